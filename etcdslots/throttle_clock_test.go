package etcdslots

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/throttle"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TestStateKeepsNoInstant: what a host writes to the state key does not
// depend on its wall clock, but for the report's time, which status shows
// and nothing reads: a report, then another, then a release, computed by
// hosts whose clocks are ten minutes off either way, store the same
// values as a host with the right time.
func TestStateKeepsNoInstant(t *testing.T) {
	right := time.Now()
	var want []stored
	for _, off := range []time.Duration{0, 10 * time.Minute, -10 * time.Minute} {
		now := right.Add(off)
		p := &Pool{}
		var got []stored
		v := thView{}
		rev := int64(100)
		for _, step := range []func(st *throttle.State) throttle.State{
			func(st *throttle.State) throttle.State {
				return throttle.Throttled(st, now, throttle.Report{Max: 4, Granted: revTime(90), RetryAfter: 3 * time.Second})
			},
			func(st *throttle.State) throttle.State {
				return throttle.Throttled(st, now, throttle.Report{Max: 4, Granted: revTime(rev + 5), RetryAfter: 10 * time.Second})
			},
			func(st *throttle.State) throttle.State { next, _ := throttle.Released(st, 4, now); return next },
		} {
			var old time.Time
			if v.st != nil {
				old = v.st.PauseUntil
			}
			next := step(v.st)
			lease := int64(0)
			if !next.PauseUntil.Equal(old) {
				lease = rev * 1000 // as changeThrottle grants one
			}
			s := encode(v, next, now, lease, next.PauseUntil.Sub(now))
			s.Last = nil
			got = append(got, s)
			rev += 10
			b, _ := json.Marshal(s)
			v = p.view([]*mvccpb.KeyValue{{Value: b, ModRevision: rev}}, []*mvccpb.KeyValue{{Lease: lease}}, now)
			now = now.Add(time.Second)
		}
		if want == nil {
			want = got
			t.Logf("stored: %+v", got)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("a host %v off stores %+v, want %+v", off, got, want)
		}
	}
}
