package storetest

import (
	"context"

	"github.com/pibackup/pibackup/internal/store"
)

// NoRename is st as a store that cannot rename and is not a local
// folder, as S3 is: Rename returns store.ErrNoRename, Local is "" and
// its files are plain streams (no OSFile). Tests run the backup
// engine's manifest-last protocol with it on a local folder, where what
// a killed run leaves can be looked at.
func NoRename(st store.Store) store.Store { return noRename{st} }

type noRename struct{ store.Store }

func (noRename) CanRename() bool { return false }

func (noRename) Rename(context.Context, string, string) error { return store.ErrNoRename }

func (noRename) Local() string { return "" }

func (s noRename) String() string { return "norename:" + s.Store.String() }

func (s noRename) Create(ctx context.Context, name string) (store.File, error) {
	f, err := s.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return stream{f}, nil
}

// stream hides every method of a file but store.File's.
type stream struct{ store.File }
