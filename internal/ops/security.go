package ops

// SecurityWarnings says what a person must know before writing plain
// images to a chip whose secure boot or flash encryption is on: the write
// itself succeeds, but the board may not boot what was written.
func SecurityWarnings(secureBoot, flashEncryption bool) []string {
	var w []string
	if flashEncryption {
		w = append(w, "flash encryption is on: espdeck writes the data as given, and this chip boots only data encrypted with its own key "+
			"(encrypt it first, e.g. espsecure.py encrypt_flash_data, or update through the app's OTA)")
	}
	if secureBoot {
		w = append(w, "secure boot is on: the bootloader starts only images signed with this board's key "+
			"(check one with 'espdeck image verify FILE --key PUB.pem' before writing)")
	}
	return w
}
