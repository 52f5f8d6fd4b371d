package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendIsOneLinePerRecordAndFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "audit.jsonl")
	l, err := Open(path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, l.Append(context.Background(), Record{Kind: KindUpdate, Board: "b", Bytes: int64(i), Result: "ok", Message: strings.Repeat("x", 3000)}))
		}()
	}
	wg.Wait()
	require.NoError(t, l.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, skipped, err := Read(f, Filter{})
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, recs, 50)
	require.NotEmpty(t, recs[0].Operator)
}

func TestReadSkipsTornAndForeignLines(t *testing.T) {
	in := `{"kind":"update","board":"a","mac":"AA:BB:CC:00:11:22","result":"ok","bytes":1,"duration_ms":1}
garbage
{"kind":"download","board":"b","result":"ok","bytes":1,"duration_ms":1}
{"kind":"update","board":"c","result":"auth_failed","bytes":0,"duration_ms":1}
{"kind":"upd`
	recs, skipped, err := Read(strings.NewReader(in), Filter{Kind: KindUpdate})
	require.NoError(t, err)
	require.Equal(t, 2, skipped)
	require.Len(t, recs, 2)
	recs, _, _ = Read(strings.NewReader(in), Filter{MAC: "aabbcc001122"})
	require.Len(t, recs, 1)
	require.Equal(t, "a", recs[0].Board)
	recs, _, _ = Read(strings.NewReader(in), Filter{Result: "failed"})
	require.Len(t, recs, 1)
	require.Equal(t, "c", recs[0].Board)
}

func TestOpenRefusesNonRegularFile(t *testing.T) {
	_, err := Open(t.TempDir())
	require.Error(t, err)
}
