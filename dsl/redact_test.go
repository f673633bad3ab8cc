package dsl_test

import (
	"testing"
	"time"

	"github.com/kiln-go/kiln/dsl"
	"github.com/kiln-go/kiln/dsl/configfile"
)

func TestRedact(t *testing.T) {
	for _, c := range [][2]string{
		{"redis://u:pw@cache:6379/0?password=pw", "redis://xxxxx@cache:6379/0?xxxxx"},
		{"postgres://kiln@db/accounts", "postgres://xxxxx@db/accounts"},
		{"redis://:pw@cache", "redis://xxxxx@cache"},
		{"redis://u:pa/ss?wo#rd@cache/0", "redis://xxxxx@cache/0"},
		{"https://u:pw@[::1", "https://xxxxx@[::1"},
		{"u:pw@tcp(db)/kiln", "xxxxx@tcp(db)/kiln"},
		{"sqlite:x.db?_pragma=key(pw)", "sqlite:x.db?xxxxx"},
		{"https://example.com/a", "https://example.com/a"},
		{"127.0.0.1:99999", "127.0.0.1:99999"},
		{"", ""},
	} {
		if got := dsl.Redact(c[0]); got != c[1] {
			t.Errorf("Redact(%q) = %q, want %q", c[0], got, c[1])
		}
	}
	if got, want := dsl.Quote("redis://u:pw@h"), `"redis://xxxxx@h"`; got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
}

func TestScheme(t *testing.T) {
	for _, c := range [][2]string{
		{"REDIS://cache", "redis"},
		{"postgresql://db", "postgresql"},
		{"svn+ssh://host", "svn+ssh"},
		{"sqlite:x.db", ""},
		{"://host", ""},
		{"1http://host", ""},
		{"u:pw@h://x", ""},
		{" redis://cache", ""},
	} {
		if got := dsl.Scheme(c[0]); got != c[1] {
			t.Errorf("Scheme(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

// shownSettings is a section whose rules print values, for
// TestMessagesRedactValues.
type shownSettings struct {
	Mode    string
	Origins []string
	Wait    time.Duration
	Key     string
}

var shownSchema = dsl.Bind[shownSettings](&dsl.Section{
	Name: "shown",
	Options: []dsl.Option{
		{Name: "mode", Field: "Mode", Kind: dsl.String, Rules: "oneof=fast slow"},
		{Name: "origins", Field: "Origins", Kind: dsl.Strings, Rules: "max=1"},
		{Name: "wait", Field: "Wait", Kind: dsl.Duration},
		{Name: "key", Field: "Key", Kind: dsl.Secret, Rules: "min=40"},
	},
})

// The messages of the rules quote a written value through Redact, and a
// secret's not at all.
func TestMessagesRedactValues(t *testing.T) {
	f, err := configfile.Parse("app.yaml", "yaml", []byte(`shown:
  mode: "redis://u:pw-mode@cache"
  origins: ["https://a.example", "https://u:pw-origin@b.example"]
  wait: "u:pw-wait@1s"
  key: "pw-key"
`))
	if err != nil {
		t.Fatal(err)
	}
	var s shownSettings
	err = dsl.Read(f, shownSchema, &s)
	want := `kiln/dsl: app.yaml:5: shown.key: must be at least 40 bytes long, not 6
kiln/dsl: app.yaml:2: shown.mode: must be one of fast, slow (redis://xxxxx@cache)
kiln/dsl: app.yaml:3: shown.origins: must be at most 1 ([https://a.example https://xxxxx@b.example])
kiln/dsl: app.yaml:4: shown.wait: want a duration such as 90s or 336h, got "xxxxx@1s"`
	if err == nil || err.Error() != want {
		t.Fatalf("Read:\n%v\nwant:\n%s", err, want)
	}
}
