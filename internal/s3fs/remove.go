package s3fs

import (
	"context"
	"errors"
	"io/fs"

	"github.com/minio/minio-go/v7"
)

// RemoveAll deletes the object name and every object below the folder
// name, and aborts the unfinished uploads there. A name with nothing
// below it is no error.
func (b *Bucket) RemoveAll(ctx context.Context, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrInvalid}
	}
	if _, err := b.AbortUploads(ctx, name); err != nil {
		return err
	}
	var keys []string
	if name != "." {
		keys = append(keys, b.key(name))
	}
	prefix := b.key(name)
	if name != "." {
		prefix += "/"
	}
	for o := range b.core.Client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return b.wrap("remove", name, o.Err)
		}
		keys = append(keys, o.Key)
	}
	for _, k := range keys {
		// DeleteObject of a missing key succeeds on S3.
		if err := b.core.RemoveObject(ctx, b.bucket, k, minio.RemoveObjectOptions{}); err != nil {
			if err = b.wrap("remove", name, err); !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// AbortUploads aborts every unfinished multipart upload of an object
// under the folder name ("." for the whole prefix) and says how many.
// Their parts take space (and cost money) until aborted; an interrupted
// run leaves them, and the next run calls this.
func (b *Bucket) AbortUploads(ctx context.Context, name string) (int, error) {
	if !fs.ValidPath(name) {
		return 0, &fs.PathError{Op: "abort uploads", Path: name, Err: fs.ErrInvalid}
	}
	prefix := b.key(name)
	if name != "." {
		prefix += "/"
	}
	n := 0
	keyMarker, idMarker := "", ""
	for {
		res, err := b.core.ListMultipartUploads(ctx, b.bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return n, b.wrap("list uploads in", name, err)
		}
		for _, up := range res.Uploads {
			err := b.core.AbortMultipartUpload(ctx, b.bucket, up.Key, up.UploadID)
			if err = b.wrap("abort upload of", up.Key, err); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return n, err
			}
			b.log.Info("s3: aborted an unfinished upload", "object", b.bucket+"/"+up.Key, "started", up.Initiated)
			n++
		}
		if !res.IsTruncated {
			return n, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}
