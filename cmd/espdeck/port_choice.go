package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/espdeck/espdeck/serialflash"
)

// When several ESP-looking ports are present and nothing says which, a
// person at a terminal is asked, and the choice is remembered by the USB
// serial number of the board (which survives re-plugging, unlike
// /dev/ttyUSB1), so the next command picks that board again by itself.
// The choices live in port-choices.json next to the config file: espdeck
// does not rewrite a config file a person wrote.

// portChoices maps a set of present boards (their serial numbers, sorted,
// joined) to the serial number chosen among them.
type portChoices map[string]string

func choicesPath(getenv func(string) string) string {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "espdeck", "port-choices.json")
}

func loadChoices(path string) portChoices {
	out := portChoices{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &out)
	}
	return out
}

func saveChoices(path string, ch portChoices) {
	if path == "" {
		return
	}
	b, _ := json.MarshalIndent(ch, "", "  ")
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		os.WriteFile(path, append(b, '\n'), 0o644)
	}
}

// choiceKey names a set of boards by their serial numbers; "" when one of
// them has none (it could not be recognised again).
func choiceKey(likely []serialflash.PortInfo) string {
	var serials []string
	for _, p := range likely {
		if p.Serial == "" {
			return ""
		}
		serials = append(serials, p.Serial)
	}
	sort.Strings(serials)
	return strings.Join(serials, ",")
}

// choosePort picks among several ESP-looking ports: the remembered board,
// else by asking on a terminal. ok is false when neither works.
func choosePort(c *cli, ports []serialflash.PortInfo) (string, bool) {
	path := choicesPath(c.getenv)
	interactive := isTerminal(c.stdin) && isTerminal(c.stderr)
	name, remember, ok := pickAmong(ports, loadChoices(path), interactive, c.stdin, c.stderr)
	if ok && remember != nil {
		saveChoices(path, remember)
	}
	return name, ok
}

// pickAmong is choosePort's decision: the remembered serial number among
// the likely ports, else a numbered question on in/out when interactive.
// remember is the updated choices to save (nil: nothing to save).
func pickAmong(ports []serialflash.PortInfo, ch portChoices, interactive bool, in io.Reader, out io.Writer) (name string, remember portChoices, ok bool) {
	var likely []serialflash.PortInfo
	for _, p := range ports {
		if p.LikelyESP {
			likely = append(likely, p)
		}
	}
	key := choiceKey(likely)
	if want := ch[key]; key != "" && want != "" {
		for _, p := range likely {
			if p.Serial == want {
				fmt.Fprintf(out, "using %s (board %s, chosen before among these; --port overrides)\n", p.Name, p.Serial)
				return p.Name, nil, true
			}
		}
	}
	if !interactive {
		return "", nil, false
	}
	fmt.Fprintln(out, "Several boards are plugged in:")
	for i, p := range likely {
		desc := p.Product
		if p.Serial != "" {
			desc += " serial " + p.Serial
		}
		fmt.Fprintf(out, "  %d) %s  %s:%s %s\n", i+1, p.Name, p.VID, p.PID, strings.TrimSpace(desc))
	}
	fmt.Fprintf(out, "Which one (1-%d)? ", len(likely))
	line, _ := bufio.NewReader(in).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || n < 1 || n > len(likely) {
		fmt.Fprintln(out, "no choice made")
		return "", nil, false
	}
	p := likely[n-1]
	if key != "" {
		ch[key] = p.Serial
		return p.Name, ch, true
	}
	return p.Name, nil, true
}
