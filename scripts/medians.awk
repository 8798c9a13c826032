# medians.awk: reads `go test -bench` output (any -count) and prints a
# Markdown table with, for each benchmark, the median of every metric
# over its runs and the number of runs. Used by scripts/benchmarks.sh for
# the tables that have no baseline column of their own (the ratios are
# metrics of the benchmarks, measured in the same loop).
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	runs[name]++
	for (i = 3; i < NF; i += 2) {
		unit = $(i + 1)
		if (!((name, unit) in have)) { have[name, unit] = 1; units[name] = units[name] (units[name] == "" ? "" : SUBSEP) unit }
		vals[name, unit, runs[name]] = $i
	}
}
function median(name, unit,    k, m, a, i, j, t) {
	m = 0
	for (k = 1; k <= runs[name]; k++) if ((name, unit, k) in vals) a[++m] = vals[name, unit, k] + 0
	for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (m == 0) return ""
	return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	print "| benchmark | runs | medians |"
	print "|---|---:|---|"
	for (k = 1; k <= n; k++) {
		name = order[k]
		split(units[name], us, SUBSEP)
		line = ""
		for (u = 1; u in us; u++) line = line (line == "" ? "" : ", ") sprintf("%.4g %s", median(name, us[u]), us[u])
		printf "| %s | %d | %s |\n", name, runs[name], line
	}
}
