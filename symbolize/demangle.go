package symbolize

import "strings"

// Demangle turns an Itanium C++ mangled function symbol into its qualified
// name without parameters ("_ZN3nvs7Storage15clearNamespacesEv" →
// "nvs::Storage::clearNamespaces"). It covers plain and nested names,
// constructors, destructors and common operators; for anything else
// (templates, local names, substitutions, special symbols) it reports false
// and callers fall back to DWARF's name or the symbol itself.
func Demangle(sym string) (string, bool) {
	s, ok := strings.CutPrefix(sym, "_Z")
	if !ok || s == "" {
		return "", false
	}
	d := demangler{s: s}
	var parts []string
	switch {
	case d.eat("N"):
		for strings.ContainsRune("rVKRO", rune(d.peek())) {
			d.pos++
		}
		for !d.eat("E") {
			p, ok := d.component(parts)
			if !ok {
				return "", false
			}
			parts = append(parts, p)
		}
	case d.eat("St"):
		p, ok := d.component(nil)
		if !ok {
			return "", false
		}
		parts = []string{"std", p}
	default:
		d.eat("L") // internal linkage (static function)
		p, ok := d.component(nil)
		if !ok {
			return "", false
		}
		parts = []string{p}
	}
	if len(parts) == 0 || d.peek() == 'I' {
		return "", false
	}
	return strings.Join(parts, "::"), true
}

type demangler struct {
	s   string
	pos int
}

func (d *demangler) peek() byte {
	if d.pos < len(d.s) {
		return d.s[d.pos]
	}
	return 0
}

func (d *demangler) eat(p string) bool {
	if strings.HasPrefix(d.s[d.pos:], p) {
		d.pos += len(p)
		return true
	}
	return false
}

// component reads one unqualified name; prev are the components before it
// (a constructor or destructor repeats the last one).
func (d *demangler) component(prev []string) (string, bool) {
	c := d.peek()
	switch {
	case c >= '0' && c <= '9':
		n := 0
		for d.pos < len(d.s) && d.s[d.pos] >= '0' && d.s[d.pos] <= '9' {
			n = n*10 + int(d.s[d.pos]-'0')
			d.pos++
			if n > len(d.s) {
				return "", false
			}
		}
		if n == 0 || d.pos+n > len(d.s) {
			return "", false
		}
		id := d.s[d.pos : d.pos+n]
		d.pos += n
		if strings.HasPrefix(id, "_GLOBAL__N") {
			id = "(anonymous namespace)"
		}
		return id, true
	case c == 'S' && d.eat("St"):
		return "std", true
	case c == 'C' || c == 'D':
		if len(prev) == 0 || d.pos+1 >= len(d.s) {
			return "", false
		}
		kind := d.s[d.pos+1]
		if (c == 'C' && kind >= '1' && kind <= '3') || (c == 'D' && kind >= '0' && kind <= '2') {
			d.pos += 2
			name, _, _ := strings.Cut(prev[len(prev)-1], "<")
			if c == 'D' {
				name = "~" + name
			}
			return name, true
		}
		return "", false
	case c >= 'a' && c <= 'z' && d.pos+1 < len(d.s):
		if op, ok := operators[d.s[d.pos:d.pos+2]]; ok {
			d.pos += 2
			return "operator" + op, true
		}
	}
	return "", false
}

// operators are the Itanium ABI operator encodings (constant data).
var operators = map[string]string{
	"nw": " new", "na": " new[]", "dl": " delete", "da": " delete[]",
	"ps": "+", "ng": "-", "ad": "&", "de": "*", "co": "~", "pl": "+", "mi": "-",
	"ml": "*", "dv": "/", "rm": "%", "an": "&", "or": "|", "eo": "^", "aS": "=",
	"pL": "+=", "mI": "-=", "mL": "*=", "dV": "/=", "rM": "%=", "aN": "&=",
	"oR": "|=", "eO": "^=", "ls": "<<", "rs": ">>", "lS": "<<=", "rS": ">>=",
	"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
	"nt": "!", "aa": "&&", "oo": "||", "pp": "++", "mm": "--", "cm": ",",
	"pm": "->*", "pt": "->", "cl": "()", "ix": "[]",
}
