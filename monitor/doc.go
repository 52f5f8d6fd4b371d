// Package monitor is espdeck's serial monitor: it reads a board's serial
// output line by line, recognises ESP-IDF, Arduino and ESP8266 log formats
// (level, tag, message), spots crash blocks (Guru Meditation, abort, panics,
// register dumps, ESP8266 exceptions), decodes their code addresses with a
// symbolize.Symbolizer, and renders lines with ESP log colours.
//
// The pieces are usable on their own:
//
//   - Parser turns raw text lines into Line values (stateful: crash blocks
//     and stack dumps span lines). The CLI's "decode" reads pasted logs with it.
//   - Renderer turns a Line into text, through a Theme of paint functions, so
//     the CLI uses ANSI colours (or none) and the TUI its own lipgloss styles.
//   - Filter keeps the lines a person asked for (tags, levels).
//   - Monitor owns a serial port: it reads with a short timeout, handles
//     partial lines, resets the board into the app over DTR/RTS, pauses, and
//     gives the port up to a flash job (Release) and takes it back after.
//
// The package imports no Charm module; the TUI adapts it.
package monitor
