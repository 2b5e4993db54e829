package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"portico.dev/portico/api/v1alpha1"
	"portico.dev/portico/internal/resource"
)

// header is the part of an object the store reads.
type header struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name              string `json:"name"`
		Namespace         string `json:"namespace"`
		CreationTimestamp string `json:"creationTimestamp"`
	} `json:"metadata"`
}

// parseObject checks an object's JSON and returns its key and creationTimestamp.
func parseObject(data []byte) (resource.Key, string, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return resource.Key{}, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !slices.Contains(v1alpha1.Kinds, h.Kind) {
		return resource.Key{}, "", fmt.Errorf("%w: unknown kind %q", ErrInvalid, h.Kind)
	}
	if h.Metadata.Name == "" {
		return resource.Key{}, "", fmt.Errorf("%w: %s without metadata.name", ErrInvalid, h.Kind)
	}
	// The object must also decode into its type, so Resources never fails on it.
	if err := json.Unmarshal(data, v1alpha1.NewObject(h.Kind)); err != nil {
		return resource.Key{}, "", fmt.Errorf("%w: %s/%s: %v", ErrInvalid, h.Kind, h.Metadata.Name, err)
	}
	return resource.Key{Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name}, h.Metadata.CreationTimestamp, nil
}

// setMeta returns data with metadata fields replaced (a nil value removes the field).
func setMeta(data []byte, fields map[string]any) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := top["metadata"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("%w: metadata: %v", ErrInvalid, err)
		}
	}
	for k, v := range fields {
		if v == nil {
			delete(meta, k)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		meta[k] = b
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	top["metadata"] = b
	return json.Marshal(top)
}

// withRV renders stored JSON as returned to callers: resourceVersion set.
func withRV(data []byte, rev int64) (json.RawMessage, error) {
	return setMeta(data, map[string]any{"resourceVersion": strconv.FormatInt(rev, 10)})
}

// addTo decodes an object into its slice of rs.
func addTo(rs *resource.Resources, o *Object) error {
	v := v1alpha1.NewObject(o.Key.Kind)
	if v == nil {
		return fmt.Errorf("store: %s: unknown kind", o.Key)
	}
	if err := json.Unmarshal(o.JSON, v); err != nil {
		return fmt.Errorf("store: decoding %s: %w", o.Key, err)
	}
	rs.Add(v)
	return nil
}

// checkRV compares an expected resourceVersion with the stored revision (0: absent).
func checkRV(expected string, current int64, key resource.Key) error {
	if expected == "" {
		return nil
	}
	if current == 0 || expected != strconv.FormatInt(current, 10) {
		return fmt.Errorf("%w: %s: expected resourceVersion %s", ErrConflict, key, expected)
	}
	return nil
}
