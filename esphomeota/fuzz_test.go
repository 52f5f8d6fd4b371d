package esphomeota

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
)

// FuzzReplyParser plays arbitrary bytes as the device's side of a session
// and checks that the client ends with success only for a complete
// protocol, and otherwise with a classified *Error, never a panic or hang.
func FuzzReplyParser(f *testing.F) {
	f.Add([]byte{0x00, 0x02, 0x48, 0x00, 0x41, 0x42, 0x43, 0x47, 0x44, 0x45})
	f.Add([]byte{0x00, 0x01, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45})
	f.Add(append([]byte{0x00, 0x02, 0x48, 0x00, 0x02}, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\x41\x42\x43\x47\x44\x45")...))
	f.Add([]byte{0x00, 0x02, 0x48, 0x04, 0x01, 0x00, 0x05, 0x01, 0x48, 0x61, 0x6e, 0x64})
	f.Add([]byte{0x00, 0x02, 0x94})
	f.Add([]byte{0x00, 0x02, 0x48, 0x00, 0x41, 0x42, 0x43, 0x47, 0x47, 0x47})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	image := appImage(100)
	f.Fuzz(func(t *testing.T, replies []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.Write(replies)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
		opts := Options{Password: "pw", Retries: -1, HandshakeTimeout: time.Second, DataTimeout: time.Second}
		if len(replies) > 3 && replies[3]&serverNoise != 0 {
			opts.APIKey = testKey
		}
		_, err := Upload(context.Background(), Target{Host: "127.0.0.1", Port: port}, image, opts)
		<-done
		if err == nil {
			return // a well-formed reply sequence
		}
		var e *Error
		if !errors.As(err, &e) || e.Code() == "" {
			t.Fatalf("unclassified error %T: %v", err, err)
		}
	})
}

// FuzzSimRequestParser plays arbitrary bytes as the client's side against
// the simulated device and checks that it ends the session without
// panicking or hanging.
func FuzzSimRequestParser(f *testing.F) {
	f.Add(append(magic[:], 0x06, 0x00, 0x00, 0x00, 0x00, 0x10))
	f.Add(append(magic[:], 0x0E, 0x01, 0x00, 0x31, 0x00))
	f.Add([]byte{1, 2, 3})
	d, err := esphomesim.New(esphomesim.Config{APIKey: testKey, HandshakeTimeout: time.Second, DataTimeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		host, dev := net.Pipe()
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, host); close(drained) }()
		go func() { host.Write(req); host.Close() }()
		d.Serve(dev, true)
		<-drained
	})
}
