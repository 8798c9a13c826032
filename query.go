package apikey

import (
	"slices"
	"strconv"
	"strings"
)

// Bounds on scope queries. Input beyond them is rejected, so that the cost
// of parsing and evaluating is bounded whatever a caller sends.
const (
	maxQueryLen    = 1024 // bytes in a scope query
	maxQueryDepth  = 16   // nesting depth of parentheses in a scope query
	maxQueryScopes = 64   // scope operands in a scope query, counting repeats
)

// A Query is a parsed scope query such as
//
//	orders:read and (billing:read or admin)
//
// It combines required (literal) scopes with the operators "and" and "or"
// and parentheses; "and" binds tighter than "or". The keywords are
// case-insensitive and must be separated by whitespace (space, tab, CR or LF)
// from what is on either side; because of this a scope named "and" or "or"
// cannot be written in a query.
//
// A Query is immutable and safe for concurrent use by multiple goroutines.
// The zero Query, and a nil *Query, allow nothing.
type Query struct {
	root   *node    // nil for the zero Query
	text   string   // canonical form, returned by String
	scopes []string // distinct scopes in order of first appearance
}

// ParseQuery parses a scope query. The query may be at most 1024 bytes long,
// nest parentheses at most 16 deep and name at most 64 scopes (counting
// repeats). Each scope must be a valid literal scope: wildcards are not
// allowed. ParseQuery never panics, whatever the input.
//
// The error is a *QueryError, which matches ErrInvalidQuery.
func ParseQuery(s string) (*Query, error) {
	if len(s) > maxQueryLen {
		msg := "query longer than " + strconv.Itoa(maxQueryLen) + " bytes"
		return nil, &QueryError{Query: s[:maxQueryLen], Pos: maxQueryLen, Msg: msg}
	}
	p := &parser{src: s}
	p.next()
	if p.tok == tokEOF {
		return nil, &QueryError{Query: s, Pos: 0, Msg: "empty query"}
	}
	root := p.parseOr()
	if p.err == nil && p.tok != tokEOF {
		if p.tok == tokRParen {
			p.fail(p.tokPos, `unexpected ")"`)
		} else {
			p.fail(p.tokPos, `expected "and" or "or"`)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	var b strings.Builder
	writeNode(&b, root, false)
	return &Query{root: root, text: b.String(), scopes: p.scopes}, nil
}

// MustParseQuery is like ParseQuery but panics if the query does not parse.
// It simplifies safe initialisation of package-level variables holding
// queries, like regexp.MustCompile.
func MustParseQuery(s string) *Query {
	q, err := ParseQuery(s)
	if err != nil {
		qe := err.(*QueryError)
		panic("apikey: MustParseQuery(" + quoteTruncated(s) + "): " + qe.Msg + " at position " + strconv.Itoa(qe.Pos))
	}
	return q
}

// Allows reports whether the granted scopes satisfy the query, each scope in
// the query being satisfied as HasScope(granted, scope) reports. It does not
// allocate.
func (q *Query) Allows(granted []string) bool {
	if q == nil || q.root == nil {
		return false
	}
	return q.root.eval(granted)
}

func (n *node) eval(granted []string) bool {
	switch n.op {
	case opScope:
		return hasValid(granted, n.scope)
	case opAnd:
		for _, a := range n.args {
			if !a.eval(granted) {
				return false
			}
		}
		return true
	default: // opOr
		for _, a := range n.args {
			if a.eval(granted) {
				return true
			}
		}
		return false
	}
}

// String returns the query in canonical form: keywords in lower case, one
// space around each, and parentheses only where they are needed, as in
// "orders:read and (billing:read or admin)". Parsing the canonical form
// gives an equal Query.
func (q *Query) String() string {
	if q == nil {
		return ""
	}
	return q.text
}

// writeNode writes the canonical form of n. An "or" inside an "and" needs
// parentheses; nothing else does, since "and" binds tighter than "or" and
// same-kind operators are flattened.
func writeNode(b *strings.Builder, n *node, inAnd bool) {
	switch n.op {
	case opScope:
		b.WriteString(n.scope)
	case opAnd:
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(" and ")
			}
			writeNode(b, a, true)
		}
	case opOr:
		if inAnd {
			b.WriteByte('(')
		}
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(" or ")
			}
			writeNode(b, a, false)
		}
		if inAnd {
			b.WriteByte(')')
		}
	}
}

// Scopes returns the distinct scopes the query names, in order of first
// appearance: for example to list in the scope attribute of an RFC 6750
// insufficient_scope challenge. The caller may modify the returned slice.
func (q *Query) Scopes() []string {
	if q == nil || len(q.scopes) == 0 {
		return nil
	}
	return slices.Clone(q.scopes)
}

// Missing returns scopes that, added to granted, would make the query allow
// the request, in the order the query names them; it returns nil if Allows
// already returns true. The set is small but not always minimal: for each
// failing "or" it takes the alternative that needs the fewest scopes, the
// first of them on a tie. For "a and (b or c)" with only "a" granted it
// returns [b].
func (q *Query) Missing(granted []string) []string {
	if q == nil || q.root == nil || q.root.eval(granted) {
		return nil
	}
	var out []string
	for _, s := range q.root.missing(granted) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// missing returns the scopes n needs, possibly with repeats.
func (n *node) missing(granted []string) []string {
	switch n.op {
	case opScope:
		if hasValid(granted, n.scope) {
			return nil
		}
		return []string{n.scope}
	case opAnd:
		var out []string
		for _, a := range n.args {
			out = append(out, a.missing(granted)...)
		}
		return out
	default: // opOr
		var best []string
		for i, a := range n.args {
			m := a.missing(granted)
			if len(m) == 0 {
				return nil
			}
			if i == 0 || len(m) < len(best) {
				best = m
			}
		}
		return best
	}
}

// Query parser: recursive descent over this grammar, where a scope is a
// run of bytes other than whitespace and parentheses that is not a keyword:
//
//	query = or EOF
//	or    = and { "or" and }
//	and   = unary { "and" unary }
//	unary = scope | "(" or ")"

// A QueryError reports a scope query that does not parse. It matches
// ErrInvalidQuery with errors.Is.
type QueryError struct {
	Query string // the query text, truncated to its first 1024 bytes
	Pos   int    // byte offset in Query where the problem was found
	Msg   string // what is wrong, without the position
}

// Error returns a message like
//
//	apikey: scope query: expected scope or "(" at position 12
func (e *QueryError) Error() string {
	return "apikey: scope query: " + e.Msg + " at position " + strconv.Itoa(e.Pos)
}

// Unwrap returns ErrInvalidQuery.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

// A node is one node of a parsed query. The parser flattens nested
// operators of the same kind, so the args of an opAnd node are never opAnd
// nodes and the args of an opOr node are never opOr nodes, and an opAnd or
// opOr node always has at least two args.
type node struct {
	op    nodeOp
	scope string  // opScope
	args  []*node // opAnd, opOr
}

// nodeOp is what a node does.
type nodeOp uint8

const (
	opScope nodeOp = iota // a required scope: node.scope
	opAnd                 // all of node.args
	opOr                  // any of node.args
)

type token uint8

const (
	tokEOF token = iota
	tokLParen
	tokRParen
	tokAnd
	tokOr
	tokScope
)

type parser struct {
	src    string
	pos    int    // offset of the first byte after the current token
	tok    token  // current token
	tokPos int    // offset of the current token
	text   string // text of the current token
	depth  int    // parentheses currently open
	count  int    // scope operands seen
	scopes []string
	err    *QueryError // first error; once set, parsing unwinds
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// next scans the next token.
func (p *parser) next() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
	p.tokPos = p.pos
	if p.pos == len(p.src) {
		p.tok, p.text = tokEOF, ""
		return
	}
	switch p.src[p.pos] {
	case '(':
		p.pos++
		p.tok, p.text = tokLParen, "("
		return
	case ')':
		p.pos++
		p.tok, p.text = tokRParen, ")"
		return
	}
	for p.pos < len(p.src) && !isSpace(p.src[p.pos]) && p.src[p.pos] != '(' && p.src[p.pos] != ')' {
		p.pos++
	}
	p.text = p.src[p.tokPos:p.pos]
	switch {
	case strings.EqualFold(p.text, "and"):
		p.tok = tokAnd
	case strings.EqualFold(p.text, "or"):
		p.tok = tokOr
	default:
		p.tok = tokScope
	}
}

// fail records the first error.
func (p *parser) fail(pos int, msg string) {
	if p.err == nil {
		p.err = &QueryError{Query: p.src, Pos: pos, Msg: msg}
	}
}

// operator consumes the current token, a keyword used as an operator,
// after checking that whitespace surrounds it. A keyword always follows an
// operand here, so it never starts the query; a keyword at the very end is
// left for the next operand to report as missing.
func (p *parser) operator() {
	if !isSpace(p.src[p.tokPos-1]) {
		p.fail(p.tokPos, "missing space before "+strconv.Quote(p.text))
		return
	}
	if p.pos < len(p.src) && !isSpace(p.src[p.pos]) {
		p.fail(p.pos, "missing space after "+strconv.Quote(p.text))
		return
	}
	p.next()
}

func (p *parser) parseOr() *node {
	n := p.parseAnd()
	if p.err != nil || p.tok != tokOr {
		return n
	}
	args := appendArg(nil, n, opOr)
	for p.err == nil && p.tok == tokOr {
		p.operator()
		if p.err != nil {
			break
		}
		args = appendArg(args, p.parseAnd(), opOr)
	}
	return &node{op: opOr, args: args}
}

func (p *parser) parseAnd() *node {
	n := p.parseUnary()
	if p.err != nil || p.tok != tokAnd {
		return n
	}
	args := appendArg(nil, n, opAnd)
	for p.err == nil && p.tok == tokAnd {
		p.operator()
		if p.err != nil {
			break
		}
		args = appendArg(args, p.parseUnary(), opAnd)
	}
	return &node{op: opAnd, args: args}
}

// appendArg appends n to the args of an op node, splicing in n's own args
// if n is an op node too: "a and (b and c)" becomes one node with three args.
func appendArg(args []*node, n *node, op nodeOp) []*node {
	if n == nil {
		return args
	}
	if n.op == op {
		return append(args, n.args...)
	}
	return append(args, n)
}

func (p *parser) parseUnary() *node {
	switch p.tok {
	case tokScope:
		p.count++
		if p.count > maxQueryScopes {
			p.fail(p.tokPos, "more than "+strconv.Itoa(maxQueryScopes)+" scopes")
			return nil
		}
		if reason, at := checkScope(p.text, true); reason != "" {
			p.fail(p.tokPos, "invalid scope "+quoteTruncated(p.text)+": "+scopeDetail(p.text, reason, at))
			return nil
		}
		if !slices.Contains(p.scopes, p.text) {
			p.scopes = append(p.scopes, p.text)
		}
		n := &node{op: opScope, scope: p.text}
		p.next()
		return n
	case tokLParen:
		open := p.tokPos
		p.depth++
		if p.depth > maxQueryDepth {
			p.fail(open, "parentheses nested more than "+strconv.Itoa(maxQueryDepth)+" deep")
			return nil
		}
		p.next()
		n := p.parseOr()
		if p.err != nil {
			return nil
		}
		switch p.tok {
		case tokRParen:
		case tokEOF:
			p.fail(open, `unclosed "("`)
			return nil
		default:
			p.fail(p.tokPos, `expected "and", "or" or ")"`)
			return nil
		}
		p.depth--
		p.next()
		return n
	default:
		p.fail(p.tokPos, `expected scope or "("`)
		return nil
	}
}
