package drain

import (
	"errors"
	"io"
	"os"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// HostFramesFile is the file next to the region where ktstr-boot writes
// the frames of what it saw itself (failure dumps, monitor samples).
const HostFramesFile = "host.frames"

// MaxHostFrames bounds what is read of the host frames file.
const MaxHostFrames = 8 << 20

// HostBlock returns ktstr-boot's frames from the file at path as one
// block for the trailer: an HBLK with the run's nonce, then each frame of
// the file whose
// CRC is good and whose type is HDMP or HMON, in order. Anything else, a
// torn last frame and bytes past MaxHostFrames are left out. A missing
// file gives nil: no block (a region ktstr-boot did not write one for).
func HostBlock(path string, nonce wire.Nonce) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxHostFrames))
	if err != nil {
		return nil, err
	}
	out := wire.AppendFrame(nil, wire.TypeHostBlock, wire.AppendHostBlock(nil, nonce))
	for len(b) > 0 {
		fr, n, err := wire.ParseFrame(b)
		if err != nil {
			break
		}
		if fr.CRCOK && fr.Pad == 0 && (fr.Type == wire.TypeHostDump || fr.Type == wire.TypeMonitor) {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out, nil
}
