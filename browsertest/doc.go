// Package browsertest drives the self-service portal (package portal) in
// a real, headless Chromium with chromedp, and checks that it mounts on
// chi. It is a module of its own so that chromedp and chi stay out of the
// library's go.mod; it has no code of its own beyond its tests.
//
// The browser test needs APIKEY_TEST_CHROMIUM, the path of a Chromium
// binary (.ci/services.sh's start_chromium sets it), and skips without
// it. It saves screenshots under APIKEY_SCREENSHOT_DIR, or a new
// temporary directory, and logs their paths.
package browsertest
