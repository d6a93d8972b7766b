package store

// SetWALBounds sets the WAL's rewind threshold (frames) and size limit
// (bytes) of SQLite stores opened after it, until restore is called.
func SetWALBounds(frames int, size int64) (restore func()) {
	f, sz := walRewindFrames, walSizeLimit
	walRewindFrames, walSizeLimit = frames, size
	return func() { walRewindFrames, walSizeLimit = f, sz }
}
