package tui

import (
	"image/color"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// Theme is the small set of semantic colours every style derives from.
type Theme struct {
	Primary, Faint, Success, Warning, Error, Border color.Color
}

// DefaultTheme works on dark and light backgrounds alike: mid-tone colours
// that keep contrast either way. Terminals without colour get the status
// words alone (Bubble Tea downsamples or strips colour for the terminal).
func DefaultTheme() Theme {
	return Theme{
		Primary: lipgloss.Color("#5F87FF"),
		Faint:   lipgloss.Color("#808080"),
		Success: lipgloss.Color("#2EA043"),
		Warning: lipgloss.Color("#D29922"),
		Error:   lipgloss.Color("#E5534B"),
		Border:  lipgloss.Color("#5C6370"),
	}
}

// Styles is every style the screens use, derived once from a Theme.
type Styles struct {
	Header   lipgloss.Style
	Demo     lipgloss.Style
	Title    lipgloss.Style
	Border   lipgloss.Style
	Faint    lipgloss.Style
	Bold     lipgloss.Style
	Cursor   lipgloss.Style // the highlighted row
	Success  lipgloss.Style
	Warning  lipgloss.Style
	Error    lipgloss.Style
	Key      lipgloss.Style
	Help     help.Styles
	BarFull  color.Color
	BarEmpty color.Color
}

// NewStyles derives the styles from a theme.
func NewStyles(t Theme) Styles {
	s := lipgloss.NewStyle()
	h := help.DefaultDarkStyles()
	h.ShortKey = s.Foreground(t.Primary)
	h.FullKey = s.Foreground(t.Primary)
	h.ShortDesc = s.Foreground(t.Faint)
	h.FullDesc = s.Foreground(t.Faint)
	h.ShortSeparator = s.Foreground(t.Border)
	h.FullSeparator = s.Foreground(t.Border)
	h.Ellipsis = s.Foreground(t.Border)
	return Styles{
		Header:   s.Bold(true).Foreground(t.Primary),
		Demo:     s.Bold(true).Foreground(t.Warning),
		Title:    s.Bold(true),
		Border:   s.Foreground(t.Border),
		Faint:    s.Foreground(t.Faint),
		Bold:     s.Bold(true),
		Cursor:   s.Reverse(true),
		Success:  s.Foreground(t.Success),
		Warning:  s.Foreground(t.Warning),
		Error:    s.Foreground(t.Error).Bold(true),
		Key:      s.Foreground(t.Primary),
		Help:     h,
		BarFull:  t.Primary,
		BarEmpty: t.Border,
	}
}
