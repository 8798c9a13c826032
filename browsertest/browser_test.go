package browsertest

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type css = chromedp.CSS

// browser starts headless Chromium from APIKEY_TEST_CHROMIUM with a 360 px
// wide window, and returns a context to drive it with and a function
// returning the errors and exceptions the page logged so far (a refusal
// by the Content-Security-Policy is one).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path := os.Getenv("APIKEY_TEST_CHROMIUM")
	if path == "" {
		t.Skip("APIKEY_TEST_CHROMIUM is not set: set it to a Chromium binary (e.g. /usr/bin/chromium from Debian's chromium package; .ci/services.sh's start_chromium does) to run the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(360, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(360, 800)), "starting %s", path)

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// step runs actions with a deadline, so that a page that never shows what
// the test waits for fails the test instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(sctx, actions...), what)
}

// closeTokenDialog confirms that the key is stored, closes the key
// dialog, and waits until the reload the page makes on close has
// finished: a navigation of the test's own that overlapped it would abort
// one of the two (net::ERR_ABORTED).
func closeTokenDialog(t *testing.T, ctx context.Context) {
	t.Helper()
	value(t, ctx, chromedp.Evaluate[bool](`window.beforeClose = true`))
	step(t, ctx, "close the dialog",
		chromedp.Click(css("#token-stored")),
		chromedp.Click(css("#token-close")),
	)
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Evaluating fails while the old document goes away; that is
		// not an answer, so it is asked again.
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		fresh, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.beforeClose === undefined && document.readyState === "complete"`))
		cancel()
		if err == nil && fresh {
			break
		}
		require.True(t, time.Now().Before(deadline), "the page did not reload after the dialog closed: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	step(t, ctx, "the reloaded list", chromedp.WaitVisible(css("li.key")))
}

func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	require.NoError(t, err)
	return v
}

// screenshotDir is where screenshots go: APIKEY_SCREENSHOT_DIR, or a new
// temporary directory that outlives the test, so that the logged paths
// can be opened afterwards.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("APIKEY_SCREENSHOT_DIR"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	dir, err := os.MkdirTemp("", "apikey-portal-screenshots-")
	require.NoError(t, err)
	return dir
}

// screenshot saves the whole page, or with viewport only what is on the
// screen, which is where a modal dialog and its backdrop are.
func screenshot(t *testing.T, ctx context.Context, dir, name string, viewport bool) {
	t.Helper()
	shot := chromedp.FullScreenshot(100)
	if viewport {
		shot = chromedp.CaptureScreenshot()
	}
	png := value(t, ctx, shot)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// source returns the HTML the server sends for the page now, to the
// browser's session.
func source(t *testing.T, s *server, session string) string {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+"/portal/", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "session", Value: session})
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return string(b)
}

// assertKeyGone checks that key is nowhere the page keeps anything: the
// DOM, the page source, the URL, the title, history, localStorage,
// sessionStorage, the clipboard-free selection, and cookies readable by
// script.
func assertKeyGone(t *testing.T, ctx context.Context, s *server, session, key string) {
	t.Helper()
	secret := key[strings.LastIndexByte(key, '_')+1:]
	kept := map[string]string{
		"DOM":         value(t, ctx, chromedp.OuterHTML(css("html"))),
		"page source": source(t, s, session),
		"URL, title, storage, selection, cookies": value(t, ctx, chromedp.Evaluate[string](`JSON.stringify([
			location.href, document.title, history.length, Object.entries(localStorage),
			Object.entries(sessionStorage), String(window.getSelection()), document.cookie])`)),
	}
	for where, text := range kept {
		assert.NotContains(t, text, key, "the key is in the %s", where)
		assert.NotContains(t, text, secret, "the key's secret is in the %s", where)
	}
}

// sessionOf returns the one session the server handed out.
func sessionOf(t *testing.T, s *server) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Len(t, s.sessions, 1)
	for id := range s.sessions {
		return id
	}
	return ""
}

// TestPortalInBrowser does what a customer does, by clicking, in headless
// Chromium 360 px wide: (1) create a key, (2) read it from the dialog, (3)
// call the protected API with it (200), (4) close the dialog and reload:
// the key is nowhere in the DOM, the HTML, the URL or storage, (5) rotate:
// both keys work during the grace period, (6) revoke: 401. It saves
// screenshots of the dialog and the list, and fails on any error or
// exception the page logs, a refusal by the CSP among them.
func TestPortalInBrowser(t *testing.T) {
	ctx, problems := browser(t)
	s := newServer(t, nil)
	dir := screenshotDir(t)

	step(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin?as=alice"),
		chromedp.WaitVisible(css("#create-form")),
	)
	session := sessionOf(t, s)
	assert.LessOrEqual(t, value(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)), 360,
		"the page scrolls sideways at 360 px")

	// 1. Create a key by clicking.
	step(t, ctx, "create a key",
		chromedp.Click(css("#create-name")),
		chromedp.SendKeys(css("#create-name"), "browser test key"),
		chromedp.Click(css(`input[name="scopes"][value="orders:*"]`)),
		chromedp.Click(css("#create-ips")),
		chromedp.SendKeys(css("#create-ips"), "127.0.0.1, ::1"),
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css("#token-value")),
	)
	// 2. Read it from the dialog.
	key := value(t, ctx, chromedp.Text(css("#token-value")))
	_, err := apikey.Parse(key)
	require.NoError(t, err, "the dialog shows a key: %q", key)
	assert.True(t, value(t, ctx, chromedp.Evaluate[bool](`document.getElementById("token-close").disabled`)),
		"Done is disabled until the key is confirmed stored")
	assert.True(t, value(t, ctx, chromedp.Evaluate[bool](`document.getElementById("token-dialog").open`)))
	screenshot(t, ctx, dir, "portal-dialog.png", true)

	// 3. Call a protected endpoint of the same server with it.
	assert.Equal(t, 200, s.call(t, key))

	// 4. Close the dialog and reload: the key appears nowhere.
	closeTokenDialog(t, ctx)
	assertKeyGone(t, ctx, s, session, key)
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(css("li.key")))
	assertKeyGone(t, ctx, s, session, key)
	kid := key[len("acme_live_"):][:apikey.IDLen]
	card := `li.key[data-id="` + kid + `"]`
	assert.Equal(t, "acme_live_"+kid+"_…", value(t, ctx, chromedp.Text(css(card+" .masked"))))
	assert.Contains(t, value(t, ctx, chromedp.Text(css(card+" .badges"))), "expires in 90 days")
	screenshot(t, ctx, dir, "portal-list.png", false)

	// 5. Rotate by clicking: both keys work during the grace period.
	step(t, ctx, "open rotate",
		chromedp.Click(css(card+" button.rotate")),
		chromedp.WaitVisible(css("#confirm-dialog")),
	)
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#confirm-title"))), "browser test key", "the confirmation names the key")
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#grace-end"))), "The old key stops working at", "rotation says when the old key stops")
	screenshot(t, ctx, dir, "portal-rotate-confirm.png", true)
	step(t, ctx, "rotate",
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css("#token-value")),
	)
	rotated := value(t, ctx, chromedp.Text(css("#token-value")))
	require.NotEqual(t, key, rotated)
	_, err = apikey.Parse(rotated)
	require.NoError(t, err, "the dialog shows the new key: %q", rotated)
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#token-note"))), "stops working at")
	assert.Equal(t, 200, s.call(t, key), "the old key works during the grace period")
	assert.Equal(t, 200, s.call(t, rotated), "the new key works")
	closeTokenDialog(t, ctx)
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(css("li.key")))
	assertKeyGone(t, ctx, s, session, rotated)
	assertKeyGone(t, ctx, s, session, key)

	// 6. Revoke by clicking: 401.
	newCard := `li.key[data-id="` + rotated[len("acme_live_"):][:apikey.IDLen] + `"]`
	step(t, ctx, "open revoke",
		chromedp.Click(css(newCard+" button.revoke")),
		chromedp.WaitVisible(css("#confirm-dialog")),
	)
	assert.Equal(t, "Revoke “browser test key”?", value(t, ctx, chromedp.Text(css("#confirm-title"))), "the confirmation names the key")
	step(t, ctx, "revoke",
		chromedp.Click(css("#confirm-ok")),
		chromedp.WaitVisible(css(newCard+" .badge.bad")),
	)
	assert.Equal(t, "revoked", value(t, ctx, chromedp.Text(css(newCard+" .badge.bad"))))
	assert.Equal(t, 401, s.call(t, rotated), "the revoked key is refused")
	// The usage this month: three calls let through, two with the old
	// key and one with the new; the refused one cost nothing.
	time.Sleep(300 * time.Millisecond) // the last use reaches the store
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(css("#usage-total")))
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#usage-total"))), "all keys: 3 requests · 3 units")
	assert.Equal(t, "2 requests · 2 units", value(t, ctx, chromedp.Text(css(card+" .key-usage"))))
	assert.Equal(t, "1 request · 1 unit", value(t, ctx, chromedp.Text(css(newCard+" .key-usage"))))
	screenshot(t, ctx, dir, "portal-after-revoke.png", false)

	assert.Empty(t, problems(), "the page logged errors (a refusal by the CSP is one)")
	s.mu.Lock()
	var actions []string
	for _, e := range s.events {
		actions = append(actions, e.Action)
	}
	s.mu.Unlock()
	assert.Equal(t, []string{"create", "rotate", "revoke"}, actions)
}

// TestBrowserSeesCSPRefusals is the control of TestPortalInBrowser's last
// check: an inline script, which the portal's Content-Security-Policy
// refuses, is reported as a console error, so an empty list of problems
// means the page broke no rule.
func TestBrowserSeesCSPRefusals(t *testing.T) {
	ctx, problems := browser(t)
	s := newServer(t, nil)
	step(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin?as=alice"),
		chromedp.WaitVisible(css("#create-form")),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const el = document.createElement("script");
			el.textContent = "window.inlineRan = true";
			document.body.appendChild(el);
		})()`),
	)
	ran := value(t, ctx, chromedp.Evaluate[bool](`window.inlineRan === true`))
	assert.False(t, ran, "the CSP let an inline script run")
	require.Eventually(t, func() bool { return len(problems()) > 0 }, 5*time.Second, 50*time.Millisecond,
		"the refused inline script was not reported")
	assert.Contains(t, strings.Join(problems(), "\n"), "Content Security Policy")
}

// TestPortalByKeyboard creates a key and dismisses its dialog with the
// keyboard alone, from the top of the page: Tab, Space, Enter and
// Escape, no click. Escape does not close the dialog before the key is
// confirmed stored.
func TestPortalByKeyboard(t *testing.T) {
	ctx, problems := browser(t)
	s := newServer(t, nil)
	focused := func() string {
		return value(t, ctx, chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.value || document.activeElement.tagName`))
	}
	step(t, ctx, "sign in",
		chromedp.Navigate(s.URL+"/signin?as=kim"),
		chromedp.WaitVisible(css("#create-form")),
		chromedp.KeyEvent("\t"),
	)
	require.Equal(t, "create-name", focused(), "the first Tab reaches the name")
	step(t, ctx, "fill the form", chromedp.KeyEvent("keyboard key"), chromedp.KeyEvent("\t"))
	require.Equal(t, "orders:*", focused())
	step(t, ctx, "pick a scope", chromedp.KeyEvent(" "))
	for _, want := range []string{"billing:read", "create-expires", "create-prefix", "create-ips", "create-submit"} {
		step(t, ctx, "tab", chromedp.KeyEvent("\t"))
		require.Equal(t, want, focused())
	}
	step(t, ctx, "submit", chromedp.KeyEvent("\r"), chromedp.WaitVisible(css("#token-value")))
	key := value(t, ctx, chromedp.Text(css("#token-value")))
	assert.Equal(t, 200, s.call(t, key))
	assert.Equal(t, "token-copy", focused(), "the dialog takes the focus")

	step(t, ctx, "escape before confirming", chromedp.KeyEvent("\x1b"), chromedp.Sleep(200*time.Millisecond))
	assert.True(t, value(t, ctx, chromedp.Evaluate[bool](`document.getElementById("token-dialog").open`)),
		"Escape closed the dialog before the key was confirmed stored")
	step(t, ctx, "confirm", chromedp.KeyEvent("\t"))
	require.Equal(t, "token-stored", focused())
	step(t, ctx, "check", chromedp.KeyEvent(" "), chromedp.KeyEvent("\t"))
	require.Equal(t, "token-close", focused())
	step(t, ctx, "done", chromedp.KeyEvent("\r"), chromedp.WaitVisible(css("li.key")))
	assertKeyGone(t, ctx, s, sessionOf(t, s), key)
	assert.Empty(t, problems())
}

// TestPortalEdit renames a key and changes its allowlist in the edit
// dialog; a malformed CIDR is refused in the dialog and changes nothing.
func TestPortalEdit(t *testing.T) {
	ctx, problems := browser(t)
	s := newServer(t, nil)
	step(t, ctx, "sign in and create",
		chromedp.Navigate(s.URL+"/signin?as=lee"),
		chromedp.WaitVisible(css("#create-form")),
		chromedp.SendKeys(css("#create-name"), "to rename"),
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css("#token-value")),
		chromedp.Click(css("#token-stored")),
		chromedp.Click(css("#token-close")),
		chromedp.WaitVisible(css("li.key button.edit")),
	)
	step(t, ctx, "a bad CIDR",
		chromedp.Click(css("li.key button.edit")),
		chromedp.WaitVisible(css("#edit-dialog")),
		chromedp.SetValue(css("#edit-ips"), "10.0.0.0/33"),
		chromedp.Click(css("#edit-save")),
		chromedp.WaitVisible(css("#edit-error")),
	)
	assert.Contains(t, value(t, ctx, chromedp.Text(css("#edit-error"))), "allowed_ips[0]")
	assert.Equal(t, "true", value(t, ctx, chromedp.Evaluate[string](`document.getElementById("edit-ips").getAttribute("aria-invalid")`)))
	step(t, ctx, "rename",
		chromedp.SetValue(css("#edit-name"), "renamed in the browser"),
		chromedp.SetValue(css("#edit-ips"), "192.0.2.0/24"),
		chromedp.Click(css("#edit-save")),
		chromedp.WaitVisible(css("li.key")),
	)
	require.Eventually(t, func() bool {
		renamed, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("li.key h3")?.textContent === "renamed in the browser"`))
		return err == nil && renamed // an error: the page is reloading
	}, 20*time.Second, 100*time.Millisecond, "the key was not renamed on the page")
	assert.Contains(t, value(t, ctx, chromedp.Text(css("li.key dl"))), "192.0.2.0/24")
	for _, p := range problems() { // the refused PATCH is logged as a failed load, and nothing else
		assert.Contains(t, p, "status of 400", "the page logged an error")
	}
}
