package record_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ktstr-go/ktstr/lib/record"
)

func ExampleWriter() {
	w := record.NewWriter(os.Stdout, true) // JSON lines
	w.Write(&record.Record{Kind: record.KindEntry, Seq: 0, AtNS: 1200, Tag: "EXIT", MsgType: 0x45584954,
		CRCOK: true, Payload: []byte{0, 0, 0, 0}})
	w.Write(&record.Record{Kind: record.KindEffect, Seq: 1, AtNS: 1300, Effect: record.EffectCurrentStep,
		Tag: "STIM", MsgType: 0x5354494D, Step: 2})
	w.Close()
	// Output:
	// {"v":1,"kind":"entry","seq":0,"at_ns":1200,"tag":"EXIT","msg_type":1163413844,"crc_ok":true,"payload":"AAAAAA=="}
	// {"v":1,"kind":"effect","seq":1,"at_ns":1300,"effect":"current_step","tag":"STIM","msg_type":1398032717,"step":2}
}

func ExampleReader() {
	// A Reader takes either form; here msgpack written by a Writer.
	var b bytes.Buffer
	w := record.NewWriter(&b, false)
	w.Write(&record.Record{Kind: record.KindDiag, Seq: 4, Diag: record.DiagTruncatedTail, Offset: 96, Dropped: 7,
		Message: "input ended inside a frame"})
	w.Close()
	rd := record.NewReader(&b)
	for {
		r, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Kind, r.Diag, r.Seq, r.Offset, r.Dropped)
	}
	_, err := record.NewReader(strings.NewReader(`{"v":2,"kind":"entry"}`)).Read()
	fmt.Println(err)
	// Output:
	// diag truncated_tail 4 96 7
	// record: record 0: schema version 2, this build reads 1
}

// A filter between ktstr-dispatch and ktstr-verdict: it passes every
// record but the kernel log's, in the form it was given.
func ExampleFilter() {
	in := strings.NewReader(`{"v":1,"kind":"entry","seq":0,"at_ns":5,"tag":"DMSG","msg_type":1145918279,"crc_ok":true,"payload":"b29wcw=="}
{"v":1,"kind":"entry","seq":1,"at_ns":9,"tag":"EXIT","msg_type":1163413844,"crc_ok":true,"payload":"AAAAAA=="}
`)
	f := record.Filter{Keep: func(r *record.Record) (bool, error) {
		return r.Kind != record.KindEntry || r.Tag != "DMSG", nil
	}}
	if err := f.Copy(os.Stdout, in); err != nil {
		fmt.Fprintln(os.Stderr, "filter:", err)
	}
	// Output:
	// {"v":1,"kind":"entry","seq":1,"at_ns":9,"tag":"EXIT","msg_type":1163413844,"crc_ok":true,"payload":"AAAAAA=="}
}

// Equal tells whether two replays of one recording gave the same record.
func ExampleEqual() {
	a := &record.Record{Kind: record.KindEffect, Seq: 3, AtNS: 1200, Effect: record.EffectScenarioStart, StartNS: 1200}
	b := &record.Record{Kind: record.KindEffect, Seq: 3, AtNS: 5100, Effect: record.EffectScenarioStart, StartNS: 5100}
	fmt.Println(record.Equal(a, b))
	b.Seq = 4
	fmt.Println(record.Equal(a, b))
	// Output:
	// true
	// false
}
