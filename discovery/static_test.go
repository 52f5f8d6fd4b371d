package discovery

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAddStaticWhileWatching(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := New(Options{DisableMDNS: true, DisableSerial: true})
	events := w.Watch(ctx)

	d, err := w.AddStatic(ctx, Device{Host: "192.0.2.7", Port: 8266, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}})
	require.NoError(t, err)
	require.Equal(t, "manual/192.0.2.7:8266", d.ID)
	require.True(t, d.Static)

	select {
	case e := <-events:
		require.Equal(t, Added, e.Kind)
		require.Equal(t, d.ID, e.Device.ID)
	case <-ctx.Done():
		t.Fatal("no Added event for the hand-added device")
	}
	require.Len(t, w.Snapshot(), 1)

	_, err = w.AddStatic(ctx, Device{Host: "192.0.2.7", Port: 8266, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}})
	require.ErrorContains(t, err, "already in the list")
	_, err = w.AddStatic(ctx, Device{})
	require.Error(t, err)
}
