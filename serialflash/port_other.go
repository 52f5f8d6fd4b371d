//go:build !unix

package serialflash

func permissionHint(name string) string {
	return "another user or program owns the port: check its permissions, or run from an account that may use it"
}

func busyHint(name string) string {
	return "another program has it open (a serial monitor, the Arduino IDE): close it and try again"
}
