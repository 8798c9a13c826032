package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apikeykit/apikey"
	"github.com/apikeykit/apikey/envconfig"
)

// importColumns are the CSV header's column names, and the JSON lines'
// field names. owner and hash are required; the others may be left out
// or empty.
var importColumns = []string{"owner", "name", "scopes", "expires", "not_before", "rate", "quota", "allow_ips", "metadata", "hash", "id"}

// importRecord is one JSON line; a CSV row is read into one too.
type importRecord struct {
	Owner     string            `json:"owner"`
	Name      string            `json:"name"`
	Scopes    []string          `json:"scopes"`
	Expires   string            `json:"expires"`
	NotBefore string            `json:"not_before"`
	Rate      string            `json:"rate"`
	Quota     string            `json:"quota"`
	AllowIPs  []string          `json:"allow_ips"`
	Metadata  map[string]string `json:"metadata"`
	Hash      string            `json:"hash"`
	ID        string            `json:"id"`
}

// maxImportFile bounds what import reads: about a million keys.
const maxImportFile = 256 << 20

func runImport(ctx context.Context, e *env, args []string) error {
	fs, db, asJSON := flagSet(e, "import", "FILE.csv|FILE.jsonl|-")
	format := fs.String("format", "", "csv or jsonl (default: from the file's extension; required for -)")
	lf := addLegacyFlags(fs, importLegacyUsage)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	cost, err := lf.cost()
	if err != nil {
		return err
	}

	path := pos[0]
	if *format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			*format = "csv"
		case ".jsonl", ".ndjson", ".json":
			*format = "jsonl"
		default:
			return fmt.Errorf("cannot tell the format of %q from its extension: give --format csv or --format jsonl", path)
		}
	}
	var in io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, maxImportFile+1))
	if err != nil {
		return err
	}
	if len(data) > maxImportFile {
		return fmt.Errorf("%s is larger than %d MiB: split it", path, maxImportFile>>20)
	}

	var recs []importRecord
	var lines []int
	switch *format {
	case "csv":
		recs, lines, err = readImportCSV(data)
	case "jsonl":
		recs, lines, err = readImportJSONL(data)
	default:
		return fmt.Errorf("--format %q: want csv or jsonl", *format)
	}
	if err != nil {
		return fmt.Errorf("%s: %w; nothing imported", path, err)
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s holds no keys; nothing imported", path)
	}
	now := time.Now()
	batch := make([]apikey.LegacyImport, len(recs))
	for i := range recs {
		if batch[i], err = recs[i].legacyImport(now); err != nil {
			return fmt.Errorf("%s: line %d: %w; nothing imported", path, lines[i], err)
		}
		if strings.HasPrefix(recs[i].Hash, apikey.LegacyHMACSHA256+":") {
			if err := checkHMACSecret(lf); err != nil {
				return fmt.Errorf("%s: line %d: %w; nothing imported", path, lines[i], err)
			}
		}
	}

	// Unsalted hashes are stored as digests under the pepper: imported
	// under the development pepper, they would be found by no service.
	if _, err := envconfig.Peppers(); errors.Is(err, envconfig.ErrNoPepper) {
		return fmt.Errorf("import needs the services' pepper in %s (and %s): imported keys are found by a digest under it; nothing imported", envconfig.VarPepper, envconfig.VarPepperVersion)
	}
	m, done, err := openManager(ctx, e, *db, withDigests, apikey.WithLegacy(apikey.LegacyConfig{Cost: cost}))
	if err != nil {
		return err
	}
	defer done()
	keys, err := m.ImportLegacy(ctx, batch)
	if err != nil {
		var ie *apikey.ImportError
		switch {
		case errors.As(err, &ie) && ie.Earlier >= 0 && ie.Earlier < len(lines) && ie.Index < len(lines):
			return fmt.Errorf("%s: line %d: the same key as line %d (the same hash, or the same legacy ID); nothing imported", path, lines[ie.Index], lines[ie.Earlier])
		case errors.As(err, &ie) && ie.Index < len(lines):
			return fmt.Errorf("%s: line %d: %w; nothing imported", path, lines[ie.Index], explain(ie.Err))
		}
		return fmt.Errorf("%s: %w; nothing imported", path, explain(err))
	}
	type imported struct {
		Line  int    `json:"line"`
		ID    string `json:"id"`
		Owner string `json:"owner"`
	}
	out := make([]imported, len(keys))
	for i, k := range keys {
		out[i] = imported{lines[i], k.ID, k.Owner}
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			Imported int        `json:"imported"`
			Keys     []imported `json:"keys"`
		}{len(keys), out})
	}
	fmt.Fprintf(e.stdout, "imported %d keys from %s\n", len(keys), path)
	for _, k := range out {
		fmt.Fprintf(e.stdout, "  line %d: %s (owner %s)\n", k.Line, k.ID, k.Owner)
	}
	fmt.Fprintln(e.stdout, "They verify in services whose Manager has apikey.WithLegacy and the same pepper.")
	return nil
}

// checkHMACSecret makes sure whoever imports hmac-sha256 hashes has the
// old system's secret at hand: the import itself does not need it (the
// hash is stored as a digest under the pepper), but without it in every
// service no such key ever verifies.
func checkHMACSecret(lf *legacyFlags) error {
	if lf.hmacSecretEnv == "" {
		return errors.New("an hmac-sha256 hash verifies only with the old system's secret: give --hmac-secret-env VAR, and the same secret to the services (LegacyConfig.HMACSecret)")
	}
	_, err := lf.hmacSecret()
	return err
}

// readImportCSV reads a header naming importColumns (any order, any
// subset that has owner and hash), then one key per row: scopes and
// allow_ips separated by spaces, metadata as key=value pairs separated
// by spaces. It returns each row's line number.
func readImportCSV(data []byte) ([]importRecord, []int, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, nil, csvError(err)
	}
	cols := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(importColumns, h) {
			return nil, nil, fmt.Errorf("line 1: unknown column %q: want some of %s", h, strings.Join(importColumns, ", "))
		}
		if _, dup := cols[h]; dup {
			return nil, nil, fmt.Errorf("line 1: column %q twice", h)
		}
		cols[h] = i
	}
	for _, need := range []string{"owner", "hash"} {
		if _, ok := cols[need]; !ok {
			return nil, nil, fmt.Errorf("line 1: no %q column (the header must name the columns: %s)", need, strings.Join(importColumns, ", "))
		}
	}
	var recs []importRecord
	var lines []int
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, csvError(err)
		}
		line, _ := r.FieldPos(0)
		if len(recs) == apikey.MaxImportBatch {
			return nil, nil, fmt.Errorf("line %d: more than %d keys: split the file", line, apikey.MaxImportBatch)
		}
		get := func(name string) string {
			if i, ok := cols[name]; ok {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		rec := importRecord{
			Owner: get("owner"), Name: get("name"), Scopes: strings.Fields(get("scopes")),
			Expires: get("expires"), NotBefore: get("not_before"), Rate: get("rate"), Quota: get("quota"),
			AllowIPs: strings.Fields(get("allow_ips")), Hash: get("hash"), ID: get("id"),
		}
		for _, kv := range strings.Fields(get("metadata")) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, nil, fmt.Errorf("line %d: metadata %q: want key=value pairs separated by spaces", line, kv)
			}
			if rec.Metadata == nil {
				rec.Metadata = make(map[string]string)
			}
			rec.Metadata[k] = v
		}
		recs = append(recs, rec)
		lines = append(lines, line)
	}
	return recs, lines, nil
}

// csvError says where a CSV file is malformed, without quoting it.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: malformed CSV: %w", pe.StartLine, pe.Err)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("empty file: want a header line naming the columns")
	}
	return err
}

// readImportJSONL reads one JSON object per line (blank lines skipped),
// with the fields of importRecord and no others.
func readImportJSONL(data []byte) ([]importRecord, []int, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var recs []importRecord
	var lines []int
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if len(recs) == apikey.MaxImportBatch {
			return nil, nil, fmt.Errorf("line %d: more than %d keys: split the file", line, apikey.MaxImportBatch)
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		var rec importRecord
		if err := dec.Decode(&rec); err != nil {
			return nil, nil, fmt.Errorf("line %d: malformed JSON: %w", line, jsonError(err))
		}
		if dec.More() {
			return nil, nil, fmt.Errorf("line %d: more than one JSON value", line)
		}
		recs = append(recs, rec)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("line %d: %w", len(lines)+1, err)
	}
	return recs, lines, nil
}

// jsonError keeps what encoding/json says about a line's shape, but not
// the values it may quote (a hash, a key pasted by mistake).
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %v", te.Field, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return fmt.Errorf("%s: want some of %s", strings.TrimPrefix(err.Error(), "json: "), strings.Join(importColumns, ", "))
	}
	return errors.New("not a JSON object")
}

// legacyImport checks what the command reads itself (times, limits,
// addresses) and builds the item; the Manager checks the rest.
func (rec *importRecord) legacyImport(now time.Time) (apikey.LegacyImport, error) {
	out := apikey.LegacyImport{Hash: rec.Hash, ID: rec.ID, IssueRequest: apikey.IssueRequest{
		Owner: rec.Owner, Name: rec.Name, Scopes: rec.Scopes, Metadata: rec.Metadata,
	}}
	if rec.Owner == "" {
		return out, errors.New("owner is empty")
	}
	if rec.Hash == "" {
		return out, errors.New("hash is empty")
	}
	if err := refuseKeys("owner", rec.Owner, rec.Name); err != nil {
		return out, err
	}
	var err error
	if rec.Expires != "" {
		if out.ExpiresAt, err = parseTime(rec.Expires, now); err != nil {
			return out, fmt.Errorf("expires %q: %w", rec.Expires, err)
		}
	}
	if rec.NotBefore != "" {
		if out.NotBefore, err = parseTime(rec.NotBefore, now); err != nil {
			return out, fmt.Errorf("not_before %q: %w", rec.NotBefore, err)
		}
	}
	if rec.Rate != "" {
		if out.RateLimit, err = apikey.ParseLimit(rec.Rate); err != nil {
			return out, fmt.Errorf("rate: %w", err)
		}
	}
	if rec.Quota != "" {
		if out.Quota, err = apikey.ParseQuota(rec.Quota); err != nil {
			return out, fmt.Errorf("quota: %w", err)
		}
	}
	for _, s := range rec.AllowIPs {
		p, err := parsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("allow_ips %q: want an address or CIDR such as 10.0.0.0/8", s)
		}
		out.AllowedIPs = append(out.AllowedIPs, p)
	}
	return out, nil
}
