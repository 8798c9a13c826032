package apikey_test

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	texttemplate "text/template"

	"github.com/apikeykit/apikey"
	"github.com/stretchr/testify/require"
)

// redactVerbs is every fmt verb, and width, precision and flag variants,
// including verbs that make no sense for the type (fmt's bad-verb path
// prints by reflection) and %w (which only fmt.Errorf accepts).
var redactVerbs = []string{
	"%v", "%+v", "%#v", "%T", "%s", "%q", "%x", "%X", "%d", "%t", "%b", "%o", "%O", "%c", "%U",
	"%e", "%E", "%f", "%F", "%g", "%G", "%p", "%w",
	"%10s", "%-10s", "%-x", "%+q", "%#q", "%#x", "% x", "% X", "%#X", "%08d", "%.3s", "%.100s",
	"%10.4v", "%-90v", "%+d", "%#o", "%#U", "%6.2f", "%#p", "%#w", "%+w", "%#s", "%!", "%z",
}

// The shapes a key takes in a caller's data. They are generic so that
// both Secret and Token take every one of them.
type (
	redactExported[T any]   struct{ Key T }
	redactUnexported[T any] struct{ key T }
	redactBoth[T any]       struct {
		Key  T
		key  T
		Name string
	}
	redactNested[T any] struct {
		Outer redactExported[T]
		inner redactUnexported[T]
		ptr   *redactUnexported[T]
	}
	redactInterface struct {
		Key any
		key any
	}
	// Embedded, the key's methods are promoted to the struct. (Named:
	// encoding/xml panics on an unnamed struct with a promoted
	// MarshalText.)
	redactEmbeddedSecret struct {
		apikey.Secret
		Name string
	}
	redactEmbeddedToken struct {
		apikey.Token
		Name string
	}
	// redactError is a caller's error type that carries a key.
	redactError[T any] struct{ key T }
)

func (e *redactError[T]) Error() string { return "request refused" }

type redactShape struct {
	name  string
	v     any
	field bool // v has an exported field Key, for {{.Key}}
}

func redactShapes[T comparable](x T) []redactShape {
	y := x
	wrap := "%w" // not a constant, since vet rightly refuses %w of a non-error
	errW := fmt.Errorf("calling the API: "+wrap, x)
	errV := fmt.Errorf("calling the API: %v", x)
	errT := &redactError[T]{key: x}
	return []redactShape{
		{"value", x, false},
		{"pointer", &y, false},
		{"slice", []T{x, x}, false},
		{"array", [2]T{x, x}, false},
		{"map value", map[string]T{"k": x}, false},
		{"map key", map[T]int{x: 1}, false},
		{"struct field exported", redactExported[T]{x}, true},
		{"pointer to struct field exported", &redactExported[T]{x}, true},
		{"struct field unexported", redactUnexported[T]{x}, false},
		{"pointer to struct field unexported", &redactUnexported[T]{x}, false},
		{"struct fields both", redactBoth[T]{x, x, "n"}, true},
		{"nested struct", redactNested[T]{redactExported[T]{x}, redactUnexported[T]{x}, &redactUnexported[T]{x}}, false},
		{"interface field", redactInterface{x, x}, true},
		{"slice of structs", []redactUnexported[T]{{x}}, false},
		{"error wrapping %w", errW, false},
		{"error wrapping %v", errV, false},
		{"errors.Join", errors.Join(errW, errV, errT), false},
		{"error type holding it", errT, false},
		{"error wrapping an error type", fmt.Errorf("ctx: %w", errT), false},
	}
}

// redactSink writes v through one path that prints or serialises it. A
// sink with verb set uses it; the others ignore it and run once. Errors
// are part of the output: their text is printed too.
type redactSink struct {
	name string
	verb bool
	run  func(t *testing.T, s redactShape, verb string) string
}

func redactSinks() []redactSink {
	tmplText := func(src string, v any) string {
		var b bytes.Buffer
		tm, err := texttemplate.New("t").Parse(src)
		if err != nil {
			return err.Error()
		}
		if err := tm.Execute(&b, v); err != nil {
			fmt.Fprint(&b, err)
		}
		return b.String()
	}
	tmplHTML := func(src string, v any) string {
		var b bytes.Buffer
		tm, err := htmltemplate.New("t").Parse(src)
		if err != nil {
			return err.Error()
		}
		if err := tm.Execute(&b, v); err != nil {
			fmt.Fprint(&b, err)
		}
		return b.String()
	}
	logTo := func(f func(l *log.Logger)) string {
		var b bytes.Buffer
		f(log.New(&b, "", log.Lshortfile))
		return b.String()
	}
	slogTo := func(json bool, f func(l *slog.Logger)) string {
		var b bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&b, nil)
		if json {
			h = slog.NewJSONHandler(&b, nil)
		}
		f(slog.New(h))
		return b.String()
	}
	withErr := func(out []byte, err error) string {
		if err != nil {
			return string(out) + " " + err.Error()
		}
		return string(out)
	}
	return []redactSink{
		{"fmt.Sprintf", true, func(_ *testing.T, s redactShape, verb string) string { return fmt.Sprintf(verb, s.v) }},
		{"fmt.Fprintf", true, func(_ *testing.T, s redactShape, verb string) string {
			var b bytes.Buffer
			fmt.Fprintf(&b, verb, s.v)
			return b.String()
		}},
		{"fmt.Errorf", true, func(_ *testing.T, s redactShape, verb string) string {
			err := fmt.Errorf("failed: "+verb, s.v)
			return err.Error() + fmt.Sprintf(" | %+v | %#v", err, err)
		}},
		{"log.Printf", true, func(_ *testing.T, s redactShape, verb string) string {
			return logTo(func(l *log.Logger) { l.Printf(verb, s.v) })
		}},
		{"text/template printf", true, func(_ *testing.T, s redactShape, verb string) string {
			return tmplText(`{{printf "`+verb+`" .}}`, s.v)
		}},
		{"html/template printf", true, func(_ *testing.T, s redactShape, verb string) string {
			return tmplHTML(`{{printf "`+verb+`" .}}`, s.v)
		}},
		{"fmt.Sprint", false, func(_ *testing.T, s redactShape, _ string) string { return fmt.Sprint(s.v) }},
		{"fmt.Fprint", false, func(_ *testing.T, s redactShape, _ string) string {
			var b bytes.Buffer
			fmt.Fprint(&b, s.v)
			return b.String()
		}},
		{"fmt.Println", false, func(_ *testing.T, s redactShape, _ string) string {
			var b bytes.Buffer
			fmt.Fprintln(&b, "value", s.v)
			return b.String()
		}},
		{"log.Print", false, func(_ *testing.T, s redactShape, _ string) string {
			return logTo(func(l *log.Logger) { l.Print(s.v) })
		}},
		{"log.Println", false, func(_ *testing.T, s redactShape, _ string) string {
			return logTo(func(l *log.Logger) { l.Println("value", s.v) })
		}},
		{"slog TextHandler", false, func(_ *testing.T, s redactShape, _ string) string {
			return slogTo(false, func(l *slog.Logger) {
				l.Info("msg", "key", s.v, slog.Group("g", "key", s.v))
				l.With("key", s.v).Info("with")
			})
		}},
		{"slog JSONHandler", false, func(_ *testing.T, s redactShape, _ string) string {
			return slogTo(true, func(l *slog.Logger) {
				l.Info("msg", "key", s.v, slog.Group("g", "key", s.v))
				l.With("key", s.v).Info("with")
			})
		}},
		{"text/template {{.}}", false, func(_ *testing.T, s redactShape, _ string) string {
			return tmplText(`{{.}} {{print .}} {{js .}} {{html .}} {{urlquery .}}`, s.v)
		}},
		{"html/template {{.}}", false, func(_ *testing.T, s redactShape, _ string) string {
			return tmplHTML(`{{.}} <a href="/x?k={{.}}" title="{{.}}">x</a><script>var k = {{.}};</script>`, s.v)
		}},
		{"text/template {{.Key}}", false, func(_ *testing.T, s redactShape, _ string) string {
			if !s.field {
				return ""
			}
			return tmplText(`{{.Key}} {{printf "%x %d %#v" .Key .Key .Key}}`, s.v)
		}},
		{"html/template {{.Key}}", false, func(_ *testing.T, s redactShape, _ string) string {
			if !s.field {
				return ""
			}
			return tmplHTML(`{{.Key}} <script>var k = {{.Key}};</script>`, s.v)
		}},
		{"encoding/json", false, func(_ *testing.T, s redactShape, _ string) string {
			return withErr(json.Marshal(s.v))
		}},
		{"encoding/xml", false, func(_ *testing.T, s redactShape, _ string) string {
			return withErr(xml.Marshal(s.v))
		}},
		{"encoding/gob", false, func(_ *testing.T, s redactShape, _ string) string {
			var b bytes.Buffer
			err := gob.NewEncoder(&b).Encode(s.v)
			out := withErr(b.Bytes(), err)
			if err != nil {
				return out
			}
			// Decode what gob wrote, and print what came back.
			back := reflect.New(reflect.TypeOf(s.v))
			if err := gob.NewDecoder(&b).DecodeValue(back); err != nil {
				return out + " decode: " + err.Error()
			}
			return out + fmt.Sprintf(" decoded: %+v %#v", back.Elem().Interface(), back.Elem().Interface())
		}},
	}
}

// runSink runs sink, and turns a panic into output that names it.
func runSink(sink redactSink, t *testing.T, s redactShape, verb string) (out string) {
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s, %s %s panicked", s.name, sink.name, verb)
			out = fmt.Sprint("panic: ", p)
		}
	}()
	return sink.run(t, s, verb)
}

// leakFinder tells whether an output shows a key: Scan finds one in it,
// or it holds the whole token or its secret part, as text or hex.
type leakFinder struct {
	needles map[string]string // what to look for → what to call it
}

func newLeakFinder(raw string) leakFinder {
	secret := raw[len(raw)-apikey.ChecksumLen-apikey.SecretLen : len(raw)-apikey.ChecksumLen]
	f := leakFinder{needles: map[string]string{}}
	for what, s := range map[string]string{"the token": raw, "the secret part": secret} {
		f.needles[s] = what
		h := hex.EncodeToString([]byte(s))
		f.needles[h] = what + " in hex"
		f.needles[strings.ToUpper(h)] = what + " in HEX"
		f.needles[fmt.Sprintf("% x", s)] = what + " in spaced hex"
		f.needles[fmt.Sprintf("% X", s)] = what + " in spaced HEX"
	}
	return f
}

// leak returns what out shows of the key, or "" if nothing.
func (f leakFinder) leak(out string) string {
	var found []string
	_ = apikey.Scan(strings.NewReader(out), func(k apikey.Finding) error {
		found = append(found, "Scan finds it")
		return nil
	})
	for s, what := range f.needles {
		if strings.Contains(out, s) {
			found = append(found, "it holds "+what)
		}
	}
	return strings.Join(found, ", ")
}

// redact hides the key in out, so that a failure message does not print it.
func (f leakFinder) redact(out string) string {
	for s := range f.needles {
		out = strings.ReplaceAll(out, s, "[KEY]")
	}
	return out
}

// TestRedactionMatrix prints and serialises a real key, as a Secret and as
// a Token, in every shape a caller's data may hold it, with every fmt verb,
// through every ordinary sink, and checks that no output shows the key.
func TestRedactionMatrix(t *testing.T) {
	tok, err := apikey.Generate("acme_live")
	require.NoError(t, err)
	raw := tok.Secret().Reveal()
	parsed, err := apikey.Parse(strings.Clone(raw))
	require.NoError(t, err)
	finder := newLeakFinder(raw)
	redacted := "acme_live_" + tok.ID + "_…"
	// The verbs that call Format and keep the whole redacted form ("": the
	// sinks that take no verb).
	whole := map[string]bool{"": true, "%v": true, "%+v": true, "%s": true, "%q": true, "%x": true, "%d": true,
		"%t": true, "%U": true, "%10s": true, "%-90v": true, "%#x": true, "% X": true, "%.100s": true}

	// Controls: the finder must see a raw key in each form a leak takes.
	for _, out := range []string{
		"x " + raw + " y",
		fmt.Sprintf("%+v", struct{ key string }{raw}),
		fmt.Sprintf("%x", struct{ key string }{raw}),
		fmt.Sprintf("% X", raw),
		raw[len(raw)-55:],
	} {
		require.NotEmpty(t, finder.leak(out), "the finder must detect a raw key, or this test cannot fail")
	}

	type subject struct {
		name   string
		shapes []redactShape
	}
	subjects := []subject{
		{"Secret", redactShapes(apikey.NewSecret(raw))},
		{"Secret from Token", redactShapes(tok.Secret())},
		{"Token", redactShapes(tok)},
		{"Token from Parse", redactShapes(parsed)},
	}
	// Embedding cannot be generic.
	subjects[0].shapes = append(subjects[0].shapes,
		redactShape{"embedded", redactEmbeddedSecret{apikey.NewSecret(raw), "n"}, false})
	subjects[2].shapes = append(subjects[2].shapes,
		redactShape{"embedded", redactEmbeddedToken{tok, "n"}, false})

	combinations, leaks := 0, 0
	for _, sub := range subjects {
		for _, shape := range sub.shapes {
			for _, sink := range redactSinks() {
				verbs := []string{""}
				if sink.verb {
					verbs = redactVerbs
				}
				for _, verb := range verbs {
					combinations++
					out := runSink(sink, t, shape, verb)
					if what := finder.leak(out); what != "" {
						leaks++
						t.Errorf("%s, %s, %s %s: %s: %.300q", sub.name, shape.name, sink.name, verb, what, finder.redact(out))
					}
					// Control: a sink that prints the value by its methods
					// shows it redacted, so it did print it. (gob writes no
					// Secret, and only a Token's Prefix and ID.)
					if shape.name == "value" && whole[verb] && sink.name != "encoding/gob" &&
						!strings.HasSuffix(sink.name, "{{.Key}}") && !strings.Contains(out, redacted) {
						t.Errorf("%s, %s %s does not show the redacted form: %.300q", sub.name, sink.name, verb, finder.redact(out))
					}
				}
			}
		}
	}
	t.Logf("%d combinations of type, shape, sink and verb; %d showed the key", combinations, leaks)
	require.Greater(t, combinations, 5000)
}
