package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// genFrames calls fn with n wire frames drawn from seed: mostly small,
// some up to the ring's capacity, some exactly the ring's capacity. With
// fixed >= 0 every payload is fixed bytes long instead. The slice passed
// to fn is reused.
func genFrames(seed uint64, n int, ringCap uint64, fixed int, same bool, fn func([]byte) error) error {
	rng := rand.New(rand.NewPCG(seed, 0x6b747374))
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	fill := rand.NewChaCha8(s)
	maxPayload := int(ringCap) - wire.HeaderSize
	var payload, frame []byte
	for i := 0; i < n; i++ {
		size := fixed
		if fixed < 0 {
			switch r := rng.IntN(100); {
			case r < 3:
				size = maxPayload // the frame is exactly the ring
			case r < 10:
				size = rng.IntN(maxPayload + 1)
			case r < 35:
				size = rng.IntN(4096)
			default:
				size = rng.IntN(256)
			}
		}
		if !same || i == 0 {
			payload = slices.Grow(payload[:0], size)[:size]
			fill.Read(payload)
			frame = wire.AppendFrame(frame[:0], wire.TypeStdout, payload)
		}
		if err := fn(frame); err != nil {
			return err
		}
	}
	return nil
}

// shmprod is a stand-in for the guest: it creates (or opens) a region and
// writes frames into its TX ring with the real Producer.
func shmprod(args []string) int {
	fs := flag.NewFlagSet("shmprod", flag.ContinueOnError)
	size := fs.Uint64("size", 128<<10, "guest-visible size when creating the region")
	frames := fs.Int("frames", 0, "frames to write")
	seed := fs.Uint64("seed", 1, "seed of the frame generator")
	fixed := fs.Int("fixed", -1, "payload size of every frame (default: random sizes)")
	same := fs.Bool("same", false, "with -fixed: repeat one frame (for benchmarks)")
	drop := fs.Int("drop", 0, "frames larger than the ring to write (each is counted as a drop)")
	wait := fs.Duration("wait", time.Minute, "Producer.Wait")
	grace := fs.Duration("grace", time.Minute, "Producer.Grace")
	closeAs := fs.String("close", "", "mark the region closed with this reason when done")
	expect := fs.String("expect", "", "write the produced frames to this file too")
	start := fs.Duration("start", 0, "sleep this long after opening the region")
	latency := fs.Int("latency", 0, "write this many 8-byte CLOCK_MONOTONIC timestamp frames")
	pace := fs.Duration("pace", 5*time.Millisecond, "mean gap between latency frames")
	direct := fs.Bool("stdout", false, "with -latency: write the frames to stdout, not to a region (the baseline)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 && !*direct {
		fmt.Fprintln(os.Stderr, "shmprod: usage: shmprod [flags] REGION | shmprod -stdout -latency N")
		return 2
	}
	if *direct {
		if err := stamps(os.Stdout.Write, *seed, *latency, *pace); err != nil {
			fmt.Fprintln(os.Stderr, "shmprod:", err)
			return 1
		}
		return 0
	}
	path := fs.Arg(0)
	r, err := shm.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		var l shm.Layout
		if l, err = shm.DefaultLayout(*size); err == nil {
			r, err = shm.Create(path, l)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmprod:", err)
		return 1
	}
	defer r.Close()
	time.Sleep(*start)
	g := r.TX()
	p := g.NewProducer(*wait)
	p.Grace = *grace
	var out io.Writer = io.Discard
	if *expect != "" {
		f, err := os.Create(*expect)
		if err != nil {
			fmt.Fprintln(os.Stderr, "shmprod:", err)
			return 1
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		out = bw
	}
	err = genFrames(*seed, *frames, g.Cap(), *fixed, *same && *fixed >= 0, func(f []byte) error {
		if err := p.Write(f); err != nil {
			return err
		}
		_, err := out.Write(f)
		return err
	})
	if err == nil {
		err = stamps(func(b []byte) (int, error) { return len(b), p.Write(b) }, *seed, *latency, *pace)
	}
	for i := 0; i < *drop && err == nil; i++ {
		if e := p.Write(make([]byte, g.Cap()+1)); !errors.Is(e, shm.ErrTooLarge) {
			err = fmt.Errorf("oversized write = %v, want ErrTooLarge", e)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmprod:", err)
		return 1
	}
	if *closeAs != "" {
		reason := wire.EndUnknown
		for e := wire.EndUnknown; e <= wire.EndVMMError; e++ {
			if e.String() == *closeAs {
				reason = e
			}
		}
		r.MarkClosed(shm.End{Reason: uint32(reason), ExitCode: 0, Elapsed: time.Second})
	}
	return 0
}

// stamps writes n frames, each carrying the CLOCK_MONOTONIC time just
// before its write, with random gaps uniform in [pace/2, 3*pace/2].
func stamps(write func([]byte) (int, error), seed uint64, n int, pace time.Duration) error {
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < n; i++ {
		time.Sleep(pace/2 + time.Duration(rng.Int64N(int64(pace)+1)))
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		if _, err := write(wire.AppendFrame(nil, wire.TypeStdout, binary.LittleEndian.AppendUint64(nil, uint64(ts.Nano())))); err != nil {
			return err
		}
	}
	return nil
}

// framelist prints a frame stream from r, one line per frame: the type,
// the payload length and the CRC check; LOSS and VEND payloads decoded.
// A truncated tail is reported as its own line.
func framelist(r io.Reader, w io.Writer) int {
	b, err := io.ReadAll(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "framelist:", err)
		return 1
	}
	frames, events := wire.ParseStream(b, 0)
	for _, f := range frames {
		crc := "crc-ok"
		if !f.CRCOK {
			crc = "crc-bad"
		}
		fmt.Fprintf(w, "%v %d %s", f.Type, len(f.Payload), crc)
		switch f.Type {
		case wire.TypeLoss:
			if l, err := wire.DecodeLoss(f.Payload); err == nil {
				fmt.Fprintf(w, " frames=%d bytes=%d", l.Frames, l.Bytes)
			}
		case wire.TypeVMEnd:
			if e, err := wire.DecodeVMEnd(f.Payload); err == nil {
				fmt.Fprintf(w, " reason=%v exit=%d elapsed=%v", e.Reason, e.ExitCode, time.Duration(e.ElapsedNS))
			}
		}
		fmt.Fprintln(w)
	}
	for _, e := range events {
		fmt.Fprintf(w, "event %v\n", e)
	}
	return 0
}

// latread reads frames carrying a CLOCK_MONOTONIC timestamp and prints
// the latency from the producer's clock reading to the moment the frame's
// last byte arrived here: count, p50, p90, p99, max.
func latread(r io.Reader, w io.Writer) int {
	br := bufio.NewReader(r)
	var lat []time.Duration
	h := make([]byte, wire.HeaderSize)
	for {
		if _, err := io.ReadFull(br, h); err != nil {
			break
		}
		p := make([]byte, binary.LittleEndian.Uint32(h[4:]))
		if _, err := io.ReadFull(br, p); err != nil {
			break
		}
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		if wire.Type(binary.LittleEndian.Uint32(h)) == wire.TypeStdout && len(p) == 8 {
			lat = append(lat, time.Duration(ts.Nano()-int64(binary.LittleEndian.Uint64(p))))
		}
	}
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "latread: no timestamp frames")
		return 1
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	fmt.Fprintf(w, "frames %d p50 %v p90 %v p99 %v max %v\n", len(lat), q(0.50), q(0.90), q(0.99), lat[len(lat)-1])
	return 0
}
