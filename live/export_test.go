package live

import dto "github.com/prometheus/client_model/go"

// ClosesWritten is how many close frames of disconnects e has written
// (the count of kiln_live_disconnect_seconds), read on the caller's
// goroutine: gathering a registry would yield the processor.
func ClosesWritten(e *Endpoint) uint64 {
	var m dto.Metric
	if err := e.metrics.disconnect.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}
