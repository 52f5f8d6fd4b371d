package symbolize

import (
	"debug/dwarf"
	"sort"
)

// unitScopes are the functions and inlined calls of one compile unit, each
// with its address ranges and the index of the scope it is nested in.
type unitScopes struct {
	scopes []scope
}

type scope struct {
	ranges   [][2]uint64
	name     string
	callFile string // where this inlined call sits in its caller
	callLine int
	parent   int // index into scopes, -1 at the top
	depth    int
}

func (sc *scope) contains(addr uint64) bool {
	for _, r := range sc.ranges {
		if addr >= r[0] && addr < r[1] {
			return true
		}
	}
	return false
}

// inlineChain returns the scopes containing addr, innermost first and ending
// with the out-of-line function; nil without DWARF for addr.
func (s *Symbolizer) inlineChain(addr uint64) []scope {
	s.build()
	i := sort.Search(len(s.units), func(i int) bool { return s.units[i].lo > addr }) - 1
	// Unit ranges may overlap in odd ELFs; try the candidates below addr.
	for ; i >= 0; i-- {
		u := s.units[i]
		if addr >= u.hi {
			continue
		}
		us := s.unit(u.off)
		best := -1
		for j := range us.scopes {
			sc := &us.scopes[j]
			if sc.contains(addr) && (best < 0 || sc.depth > us.scopes[best].depth) {
				best = j
			}
		}
		if best < 0 {
			continue
		}
		var chain []scope
		for j := best; j >= 0; j = us.scopes[j].parent {
			chain = append(chain, us.scopes[j])
		}
		return chain
	}
	return nil
}

// unit parses (once) the subprograms and inlined subroutines of the compile
// unit at off.
func (s *Symbolizer) unit(off dwarf.Offset) *unitScopes {
	s.mu.Lock()
	defer s.mu.Unlock()
	if us, ok := s.scopes[off]; ok {
		return us
	}
	us := &unitScopes{}
	s.scopes[off] = us

	r := s.dwarf.Reader()
	r.Seek(off)
	cu, err := r.Next()
	if err != nil || cu == nil || !cu.Children {
		return us
	}
	var files []*dwarf.LineFile
	if lr, err := s.dwarf.LineReader(cu); err == nil && lr != nil {
		files = lr.Files()
	}
	// stack holds, per open DIE with children, the index of the nearest
	// recorded scope at or above it.
	stack := []int{-1}
	for len(stack) > 0 {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 { // end of a sibling list
			stack = stack[:len(stack)-1]
			continue
		}
		parent := stack[len(stack)-1]
		cur := parent
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine {
			ranges, _ := s.dwarf.Ranges(e)
			if len(ranges) > 0 {
				sc := scope{ranges: ranges, name: s.nameOf(e, 0), parent: parent}
				if parent >= 0 {
					sc.depth = us.scopes[parent].depth + 1
				}
				if e.Tag == dwarf.TagInlinedSubroutine {
					if fi, ok := e.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && int(fi) < len(files) && files[fi] != nil {
						sc.callFile = files[fi].Name
					}
					if ln, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
						sc.callLine = int(ln)
					}
				}
				us.scopes = append(us.scopes, sc)
				cur = len(us.scopes) - 1
			}
		}
		if e.Children {
			stack = append(stack, cur)
		}
	}
	return us
}

// nameOf returns a DIE's name, following abstract_origin and specification
// links (inlined copies and out-of-class definitions carry no name).
// Called with s.mu held.
func (s *Symbolizer) nameOf(e *dwarf.Entry, hops int) string {
	if n, ok := e.Val(dwarf.AttrName).(string); ok {
		return n
	}
	if hops > 4 {
		return ""
	}
	for _, a := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		off, ok := e.Val(a).(dwarf.Offset)
		if !ok {
			continue
		}
		if n, ok := s.names[off]; ok {
			return n
		}
		r := s.dwarf.Reader()
		r.Seek(off)
		ref, err := r.Next()
		if err != nil || ref == nil {
			continue
		}
		n := s.nameOf(ref, hops+1)
		s.names[off] = n
		return n
	}
	return ""
}
