package cli_test

import "testing"

// metrics_public is false unless a flag, variable or file sets it; a value
// that is not a boolean is an error.
func TestConfigMetricsPublic(t *testing.T) {
	clearEnv(t)
	t.Setenv("KILN_METRICS_PUBLIC", "")
	secrets := []string{"--data-dir", t.TempDir(), "--token-signing-secret", testSecret, "--cookie-keys", testCookieKey}
	if cfg, err := load(t, secrets...); err != nil || cfg.MetricsPublic {
		t.Fatalf("default: %v, metrics_public %v; want false", err, cfg != nil && cfg.MetricsPublic)
	}
	if cfg, err := load(t, append(secrets, "--metrics-public")...); err != nil || !cfg.MetricsPublic {
		t.Errorf("--metrics-public: %v, metrics_public %v; want true", err, cfg != nil && cfg.MetricsPublic)
	}
	bad := writeFile(t, "kiln.yaml", "metrics_public: maybe\n")
	if _, err := load(t, append(secrets, "--config", bad)...); err == nil || err.Error() != "kiln/dsl: "+bad+`:1: metrics_public: want true or false, got "maybe"` {
		t.Errorf("metrics_public: maybe: %v", err)
	}
	t.Setenv("KILN_METRICS_PUBLIC", "true")
	if cfg, err := load(t, secrets...); err != nil || !cfg.MetricsPublic {
		t.Errorf("KILN_METRICS_PUBLIC=true: %v, metrics_public %v; want true", err, cfg != nil && cfg.MetricsPublic)
	}
}
