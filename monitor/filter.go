package monitor

import (
	"fmt"
	"path"
	"strings"
)

// Filter keeps the lines a person asked for. Crash lines and the monitor's
// own notices always pass. The zero Filter passes everything.
type Filter struct {
	def   Level // threshold for lines no tag rule names; LevelNone: none set
	rules []tagRule
}

type tagRule struct {
	pattern string // lower case; a path.Match pattern
	max     Level  // LevelNone: any level
}

// ParseFilter parses a --filter value: items separated by commas or spaces,
// each a LEVEL ("W" or "warn": that level and worse everywhere), a TAG
// ("wifi", globs like "esp_*", an Arduino file "WiFiGeneric.cpp") or
// TAG:LEVEL ("wifi:D"). "wifi,E" shows everything from wifi and errors from
// everything else; "W" shows warnings and errors.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if lv, ok := ParseLevel(item); ok {
			f.def = lv
			continue
		}
		tag, lv := item, LevelNone
		if i := strings.LastIndexByte(item, ':'); i >= 0 {
			if l, ok := ParseLevel(item[i+1:]); ok {
				tag, lv = item[:i], l
			}
		}
		if tag == "*" {
			f.def = lv
			continue
		}
		if _, err := path.Match(strings.ToLower(tag), ""); err != nil || tag == "" {
			return Filter{}, fmt.Errorf("filter item %q: want a level (E, W, I, D, V), a tag, or TAG:LEVEL", item)
		}
		f.rules = append(f.rules, tagRule{strings.ToLower(tag), lv})
	}
	return f, nil
}

// Empty reports whether f passes everything.
func (f Filter) Empty() bool { return f.def == LevelNone && len(f.rules) == 0 }

// Match reports whether l should be shown.
func (f Filter) Match(l Line) bool {
	if f.Empty() || l.Kind == KindNotice || l.Crash != CrashNone {
		return true
	}
	tag := strings.ToLower(l.Tag)
	file, _, _ := strings.Cut(tag, ":") // Arduino "file.cpp:12"
	for _, r := range f.rules {
		if ok, _ := path.Match(r.pattern, tag); !ok {
			if ok, _ = path.Match(r.pattern, file); !ok || file == tag {
				continue
			}
		}
		return r.max == LevelNone || (l.Level != LevelNone && l.Level.Severity() <= r.max.Severity())
	}
	if f.def != LevelNone {
		return l.Level != LevelNone && l.Level.Severity() <= f.def.Severity()
	}
	return len(f.rules) == 0
}
