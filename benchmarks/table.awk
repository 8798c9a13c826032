# Prints a Markdown table of the results of one benchmark function in raw
# `go test -bench` output, as benchmarks/run-peers.sh and
# scripts/benchmarks.sh produce it:
#
#	awk -v bench=MiddlewarePeers -f table.awk results.txt
#	awk -v bench=Limiter -v base=apikey -f table.awk results.txt
#
# Results are named Benchmark<bench>/[round=R/][group/...]impl=I/mode=M.
# For each group, case (impl) and mode it gives the median over the rounds
# and their range, and the ratio of that median to the median of the base
# case (impl=floor unless -v base= says otherwise) and of impl=bare, with
# the difference in ns, where there is one, in the same group and mode.

function median(a, k, n,    i, j, v, t) {
	for (i = 1; i <= n; i++) t[i] = a[k, i]
	for (i = 2; i <= n; i++) {
		v = t[i]
		for (j = i - 1; j >= 1 && t[j] > v; j--) t[j + 1] = t[j]
		t[j + 1] = v
	}
	if (n % 2) return t[(n + 1) / 2]
	return (t[n / 2] + t[n / 2 + 1]) / 2
}
function lo(a, k, n,    i, m) { m = a[k, 1]; for (i = 2; i <= n; i++) if (a[k, i] < m) m = a[k, i]; return m }
function hi(a, k, n,    i, m) { m = a[k, 1]; for (i = 2; i <= n; i++) if (a[k, i] > m) m = a[k, i]; return m }
function num(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.1f", x) }
function signed(x) { return (x >= 0 ? "+" : "") num(x) }

$1 ~ "^Benchmark" bench "/" {
	name = $1
	sub(/-[0-9]+$/, "", name)
	n = split(name, p, "/")
	group = ""; impl = ""; mode = ""
	for (i = 2; i <= n; i++) {
		if (p[i] ~ /^round=/) continue
		else if (p[i] ~ /^impl=/) impl = substr(p[i], 6)
		else if (p[i] ~ /^mode=/) mode = substr(p[i], 6)
		else group = group (group == "" ? "" : "/") p[i]
	}
	if (impl == "" || mode == "") next
	if (!(group in seeng)) { seeng[group] = 1; groups[++ng] = group }
	gi = group "|" impl
	if (!(gi in seeni)) { seeni[gi] = 1; impls[group, ++ni[group]] = impl }
	if (!(mode in seenm)) { seenm[mode] = 1; modes[++nm] = mode }
	k = group "|" impl "|" mode
	c = ++cnt[k]
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[k, c] = $i
		if ($(i + 1) == "B/op") by[k, c] = $i
		if ($(i + 1) == "allocs/op") al[k, c] = $i
	}
}

END {
	if (base == "") base = "floor"
	if (ng == 0) { print "no results for Benchmark" bench > "/dev/stderr"; exit 1 }
	hasbare = 0
	for (g = 1; g <= ng; g++) for (m = 1; m <= nm; m++) if (cnt[groups[g] "|bare|" modes[m]]) hasbare = 1
	head = "| " (ng > 1 ? "comparison | " : "") "case | mode | ns/op (median) | min–max | B/op | allocs/op | × " base
	rule = "|" (ng > 1 ? "---|" : "") "---|---|---:|---:|---:|---:|---:"
	if (hasbare) { head = head " | × bare | ns over bare"; rule = rule "|---:|---:" }
	print head " |"
	print rule "|"
	for (g = 1; g <= ng; g++) {
		group = groups[g]
		for (m = 1; m <= nm; m++) {
			mode = modes[m]
			fk = group "|" base "|" mode; bk = group "|bare|" mode
			f = cnt[fk] ? median(ns, fk, cnt[fk]) : 0
			b = cnt[bk] ? median(ns, bk, cnt[bk]) : 0
			for (j = 1; j <= ni[group]; j++) {
				k = group "|" impls[group, j] "|" mode
				n = cnt[k]
				if (!n) continue
				x = median(ns, k, n)
				row = "| " (ng > 1 ? group " | " : "") impls[group, j] " | " mode " | " num(x) " | " num(lo(ns, k, n)) "–" num(hi(ns, k, n))
				row = row " | " median(by, k, n) " | " median(al, k, n) " | " (f ? sprintf("%.2f×", x / f) : "")
				if (hasbare) row = row " | " (b ? sprintf("%.1f×", x / b) : "") " | " (b ? signed(x - b) : "")
				print row " |"
			}
		}
	}
	printf "\nMedians of %d rounds per case and mode.\n", cnt[groups[1] "|" impls[groups[1], 1] "|" modes[1]]
}
