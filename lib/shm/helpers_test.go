package shm

import (
	"os"
	"testing"
)

// testRegion is a region image in process memory: the host view (with the
// trailer page) and the guest view of the same bytes.
type testRegion struct {
	image []byte
	host  *Region
	guest *Region
}

func newTestRegion(t testing.TB, size uint64) *testRegion {
	t.Helper()
	l, err := DefaultLayout(size)
	if err != nil {
		t.Fatal(err)
	}
	return newTestRegionLayout(t, l)
}

func newTestRegionLayout(t testing.TB, l Layout) *testRegion {
	t.Helper()
	image := alignedBytes(int(l.FileSize()))
	InitGuestHeader(image[:l.Size], l)
	InitHostPage(image[l.Size:], l, os.Getpid())
	h, err := openHost(image)
	if err != nil {
		t.Fatalf("openHost: %v", err)
	}
	g, err := OpenGuest(image[:l.Size])
	if err != nil {
		t.Fatalf("OpenGuest: %v", err)
	}
	return &testRegion{image: image, host: h, guest: g}
}

// setPositions starts the TX ring at position p on both sides, as if p
// bytes had already gone through it.
func (tr *testRegion) setTxPositions(p uint64) {
	store64(tr.host.mem, offTxWrite, p)
	store64(tr.host.mem, offTxRead, p)
	store64(tr.host.host, hostTxRead, p)
}
