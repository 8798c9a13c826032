package main

import (
	"strings"
	"testing"
)

func TestParseInfo(t *testing.T) {
	tests := []struct {
		name    string
		info    string
		calls   int64
		cpu     float64
		wantErr bool
	}{
		{"both sections", "# Commandstats\r\ncmdstat_evalsha:calls=120,usec=900,usec_per_call=7.50\r\ncmdstat_eval:calls=3,usec=40\r\ncmdstat_get:calls=9,usec=1\r\n\r\n# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\n", 123, 3.75, false},
		{"no scripts yet", "# CPU\nused_cpu_sys:0.5\nused_cpu_user:0.25\n", 0, 0.75, false},
		{"no cpu section", "cmdstat_evalsha:calls=1,usec=2\n", 0, 0, true},
		{"bad calls", "cmdstat_evalsha:calls=x,usec=2\nused_cpu_sys:1\n", 0, 0, true},
		{"negative calls", "cmdstat_evalsha:calls=-1\nused_cpu_sys:1\n", 0, 0, true},
		{"bad cpu", "used_cpu_sys:lots\n", 0, 0, true},
		{"empty", "", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, cpu, err := parseInfo(tt.info)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseInfo: err = %v, want error: %v", err, tt.wantErr)
			}
			if err == nil && (calls != tt.calls || cpu != tt.cpu) {
				t.Errorf("parseInfo = %d calls, %v s; want %d, %v", calls, cpu, tt.calls, tt.cpu)
			}
		})
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add("cmdstat_evalsha:calls=120,usec=900\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n")
	f.Add("used_cpu_sys:NaN\n")
	f.Fuzz(func(t *testing.T, info string) {
		calls, cpu, err := parseInfo(info)
		if err != nil {
			if calls != 0 || cpu != 0 {
				t.Fatalf("error %v with figures %d, %v", err, calls, cpu)
			}
			return
		}
		if calls < 0 || cpu < 0 || !strings.Contains(info, "used_cpu_") {
			t.Fatalf("parseInfo(%q) = %d, %v", info, calls, cpu)
		}
	})
}

func TestParseInfoOverflow(t *testing.T) {
	for _, info := range []string{
		"cmdstat_evalsha:calls=9223372036854775807\ncmdstat_eval:calls=1\nused_cpu_sys:1\n",
		"used_cpu_sys:1.7e308\nused_cpu_user:1.7e308\n",
		"used_cpu_sys:+Inf\n",
	} {
		if calls, cpu, err := parseInfo(info); err == nil {
			t.Errorf("parseInfo(%q) = %d, %v, nil; want an error", info, calls, cpu)
		}
	}
}
