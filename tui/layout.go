package tui

import (
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Layout: every screen is a list of lines, cut, padded, boxed and
// wrapped here so that no line is ever wider than the terminal.

// fit pads or cuts lines to exactly h.
func fit(lines []string, h int) []string {
	if len(lines) > h {
		return lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return lines
}

// clip cuts a rendered line to w cells.
func clip(s string, w int) string {
	if len(s) <= w || cellWidth(s) <= w { // bytes bound cells: the cheap test first
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// cellWidth is the terminal cells s takes. Most cells are plain ASCII,
// where the byte count is the answer; anything else goes to the full
// grapheme-aware measure.
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c < 0x20 {
			return ansi.StringWidth(s)
		}
	}
	return len(s)
}

// pad makes s exactly w cells wide (cut with an ellipsis when longer).
func pad(s string, w int) string {
	n := cellWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-n)
}

// box draws a titled frame of width w around lines; h is the total height
// including borders (0: as tall as the lines).
func (m Model) box(title string, lines []string, w, h int) []string {
	return m.boxKeep(title, lines, w, h, false)
}

// boxKeep is box that, when the lines do not fit, keeps the last ones
// (keepTail) or the first ones.
func (m Model) boxKeep(title string, lines []string, w, h int, keepTail bool) []string {
	if h > 0 && h < 2 {
		return nil
	}
	if h > 0 && keepTail && len(lines) > h-2 {
		lines = lines[len(lines)-(h-2):]
	}
	if w < 6 {
		w = 6
	}
	inner := w - 4
	if h <= 0 {
		h = len(lines) + 2
	}
	b := m.st.Border
	if lipgloss.Width(title) > w-5 {
		title = ansi.Truncate(title, max(w-5, 1), "…")
	}
	g := m.glyphs
	top := " " + m.st.Title.Render(title) + " "
	fill := w - 2 - lipgloss.Width(top)
	if fill < 0 {
		top = ""
		fill = w - 2
	}
	out := make([]string, 0, h)
	out = append(out, b.Render(g.tl)+top+b.Render(strings.Repeat(g.hline, max(fill, 0))+g.tr))
	side := b.Render(g.vline)
	for i := 0; i < h-2; i++ {
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		out = append(out, side+" "+pad(l, inner)+" "+side)
	}
	out = append(out, b.Render(g.bl+strings.Repeat(g.hline, w-2)+g.br))
	return out
}

// scrollOffset keeps the cursor inside a window of n rows, centred-ish.
func scrollOffset(cursor, total, n int) int {
	if total <= n {
		return 0
	}
	off := cursor - n/2
	return max(0, min(off, total-n))
}

// wrap breaks text at spaces into lines of at most w cells.
func wrap(s string, w int) []string {
	if w < 10 {
		w = 10
	}
	var out []string
	line := ""
	for _, word := range splitWords(s) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= w:
			line += " " + word
		default:
			out = append(out, line)
			line = word
		}
	}
	if line != "" || len(out) == 0 {
		out = append(out, line)
	}
	return out
}

func splitWords(s string) []string {
	var words []string
	start := -1
	for i, r := range s {
		if r == ' ' {
			if start >= 0 {
				words = append(words, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		words = append(words, s[start:])
	}
	return words
}

// wrapStyled wraps a rendered line (ANSI styles kept) to w cells. Lines
// after the first start with indent spaces, so wrapped field values stay
// in their column.
func wrapStyled(s string, w, indent int) []string {
	if w < 10 || cellWidth(s) <= w {
		return []string{s}
	}
	first := strings.Split(ansi.Wrap(s, w, ""), "\n")
	if len(first) == 1 || indent <= 0 || indent > w/2 {
		return first
	}
	// Re-wrap the rest to the narrower width next to the indent.
	rest := strings.Join(first[1:], " ")
	out := []string{first[0]}
	pad := strings.Repeat(" ", indent)
	for _, l := range strings.Split(ansi.Wrap(rest, w-indent, ""), "\n") {
		out = append(out, pad+l)
	}
	return out
}
