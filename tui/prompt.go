package tui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// prompt is a modal question: a line of input (a host, a password) or a
// yes/no confirmation that says in words what will happen.
type prompt struct {
	title    string
	lines    []string
	hasInput bool
	input    textinput.Model
	onInput  func(m *Model, v string) tea.Cmd
	// check, when set, validates the input on enter; an error keeps the
	// prompt open and shows why.
	check func(v string) error
	err   string
	onYes func(m *Model) tea.Cmd
	onNo  func(m *Model) tea.Cmd
}

func newInputPrompt(title string, lines []string, placeholder string, secret bool, on func(m *Model, v string) tea.Cmd) *prompt {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = placeholder
	if secret {
		// No echo at all would leave people unsure their typing arrives;
		// a dot per character shows that without showing the password.
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
	}
	in.SetWidth(40)
	return &prompt{title: title, lines: lines, hasInput: true, input: in, onInput: on}
}

func newConfirm(title string, lines []string, onYes func(m *Model) tea.Cmd) *prompt {
	return &prompt{title: title, lines: lines, onYes: onYes}
}

func (m *Model) promptKey(msg tea.KeyPressMsg) tea.Cmd {
	p := m.prompt
	k := m.keys
	if p.hasInput {
		switch {
		case key.Matches(msg, k.Back):
			m.prompt = nil
			if p.onNo != nil {
				return p.onNo(m)
			}
			return nil
		case key.Matches(msg, k.Enter):
			if p.check != nil {
				if err := p.check(p.input.Value()); err != nil {
					p.err = err.Error()
					return nil
				}
			}
			m.prompt = nil
			return p.onInput(m, p.input.Value())
		}
		var cmd tea.Cmd
		p.input, cmd = p.input.Update(msg)
		p.err = ""
		return cmd
	}
	switch {
	case key.Matches(msg, k.Yes):
		m.prompt = nil
		return p.onYes(m)
	case key.Matches(msg, k.No), key.Matches(msg, k.Quit), key.Matches(msg, k.Enter):
		// enter means "no": the default answer of every confirmation.
		m.prompt = nil
		if p.onNo != nil {
			return p.onNo(m)
		}
	}
	return nil
}

// askPassword asks for a row's password; the answer is kept for this run.
func (m *Model) askPassword(rowKey, why string, then func(m *Model, s Secret) tea.Cmd) tea.Cmd {
	name := m.rowName(rowKey)
	lines := []string{"The password is not shown and is kept only until espdeck exits."}
	if why != "" {
		lines = append([]string{why}, lines...)
	}
	if m.cfg.Demo {
		lines = append(lines, "Demo boards take the password "+m.cfg.DemoPassword+".")
	}
	m.prompt = newInputPrompt("Password for "+name, lines, "password", true, func(m *Model, v string) tea.Cmd {
		if v == "" {
			m.notice = "no password given; nothing sent to " + name
			return nil
		}
		m.passwords[m.resolveKey(rowKey)] = Secret(v)
		return then(m, Secret(v))
	})
	m.prompt.onNo = func(m *Model) tea.Cmd {
		m.notice = "flash of " + name + " not started: no password"
		if m.flow != nil {
			m.flow = nil
		}
		return nil
	}
	return m.prompt.input.Focus()
}

func (m Model) promptBox(maxH int) []string {
	p := m.prompt
	var lines []string
	for _, l := range p.lines {
		lines = append(lines, wrap(l, m.width-4)...)
	}
	if p.hasInput {
		lines = append(lines, "", p.input.View())
		if p.err != "" {
			lines = append(lines, wrapStyled(m.st.Error.Render(m.glyphs.fail+" "+p.err), m.width-4, 2)...)
		}
	} else {
		lines = append(lines, "", m.st.Bold.Render("[y/N]"))
	}
	return m.boxKeep(p.title, lines, m.width, min(len(lines)+2, maxH), true)
}
