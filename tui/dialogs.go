package tui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// dialog is the one contract of what opens in front of a screen and takes
// the keys until it closes (after crush's dialogs): the flash flow, the
// filter line, and prompts (a host, a password, a yes/no that says in
// words what will happen). The root sends keys to the top dialog only,
// draws it above the boxes below the screen and builds the help bar from
// its keys. Adding a dialog is a type with these methods and a place in
// (Model).dialogs.
type dialog interface {
	// keys are the dialog's bindings for the help bar.
	keys(m Model) []key.Binding
	update(m *Model, msg tea.KeyPressMsg) tea.Cmd
	// view draws the dialog in at most maxH lines; nil when it draws in
	// the footer instead (the filter line).
	view(m Model, maxH int) []string
	// input is the focused text input, for pastes and cursor blinks; nil
	// when the dialog has none right now.
	input(m *Model) *textinput.Model
	// pasted runs after a paste reached the input.
	pasted(m *Model) tea.Cmd
}

// dialogs is the stack of open dialogs, bottom first. A prompt opened
// during the flash flow (the password, the second confirmation of a force)
// sits above the flow and closes back to it.
func (m Model) dialogs() []dialog {
	var out []dialog
	if m.filtering {
		out = append(out, filterDialog{})
	}
	if m.flow != nil {
		out = append(out, flowDialog{})
	}
	if m.prompt != nil {
		out = append(out, promptDialog{})
	}
	return out
}

// topDialog is the dialog in front of the user, nil when none is open.
func (m Model) topDialog() dialog {
	if d := m.dialogs(); len(d) > 0 {
		return d[len(d)-1]
	}
	return nil
}

// promptDialog is the open prompt (m.prompt).
type promptDialog struct{}

func (promptDialog) keys(m Model) []key.Binding {
	k := m.keys
	if m.prompt.hasInput {
		return []key.Binding{describedAs(k.Enter, "ok"), describedAs(k.Back, "cancel")}
	}
	return []key.Binding{k.Yes, describedAs(k.No, "no")}
}
func (promptDialog) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.promptKey(msg) }
func (promptDialog) view(m Model, maxH int) []string              { return m.promptBox(maxH) }
func (promptDialog) input(m *Model) *textinput.Model {
	if m.prompt.hasInput {
		return &m.prompt.input
	}
	return nil
}
func (promptDialog) pasted(*Model) tea.Cmd { return nil }

// flowDialog is the flash flow (m.flow): file, facts, verdicts.
type flowDialog struct{}

func (flowDialog) keys(m Model) []key.Binding {
	k := m.keys
	f := m.flow
	if f.step == flowFile {
		recent := key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "recent"))
		recent.SetEnabled(len(m.recent()) > 0)
		return []key.Binding{describedAs(k.Enter, "check file"), k.Complete, recent, describedAs(k.Back, "cancel")}
	}
	t := f.sendTargets()
	sendDesc, send := "send", t != nil
	if m.asCampaign(t) {
		sendDesc, send = "run as a campaign", send && m.campaignAllowed()
	}
	p := f.passed()
	passedDesc := fmt.Sprintf("flash the %d that passed", len(p))
	if m.asCampaign(p) {
		passedDesc += " (campaign)"
	}
	passedOn := f.facts != nil && len(p) > 0 && !f.allOK() && !f.forced && (!m.asCampaign(p) || m.campaignAllowed())
	return []key.Binding{enabledIf(describedAs(k.Enter, sendDesc), send), enabledIf(describedAs(k.PassedOnly, passedDesc), passedOn),
		enabledIf(k.Force, f.forceable()), enabledIf(k.AsJobs, m.jobTargets() != nil), describedAs(k.Back, "other file")}
}
func (flowDialog) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.flowKey(msg) }
func (flowDialog) view(m Model, maxH int) []string              { return m.flowBox(maxH) }
func (flowDialog) input(m *Model) *textinput.Model {
	if m.flow.step == flowFile {
		return &m.flow.input
	}
	return nil
}
func (flowDialog) pasted(m *Model) tea.Cmd {
	if m.flow.step == flowFile {
		return complete(m.flow.input.Value())
	}
	return nil
}

// filterDialog is the filter line being typed (m.filtering); it draws in
// the footer, so the list stays in view as it narrows.
type filterDialog struct{}

func (filterDialog) keys(m Model) []key.Binding {
	return []key.Binding{describedAs(m.keys.Enter, "keep filter"), describedAs(m.keys.Back, "clear")}
}
func (filterDialog) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.filterKey(msg) }
func (filterDialog) view(Model, int) []string                     { return nil }
func (filterDialog) input(m *Model) *textinput.Model              { return &m.filter }
func (filterDialog) pasted(m *Model) tea.Cmd                      { m.applyFilter(); return nil }
