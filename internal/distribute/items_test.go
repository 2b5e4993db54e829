package distribute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"portico.dev/portico/internal/ir"
)

// itemsSnapshot has every kind of item, an empty virtual host and a listener without any.
func itemsSnapshot() *ir.Snapshot {
	s := hostsBase()
	s.Listeners[0].VirtualHosts = append(s.Listeners[0].VirtualHosts, ir.VirtualHost{Hostname: "empty.example", Routes: []ir.Route{}})
	s.Listeners = append(s.Listeners, ir.Listener{Name: ":9000", Port: 9000, Protocol: ir.TCP, Gateways: []string{"a/tcp"}})
	s.Certificates = []ir.Certificate{{Name: "c", Hosts: []string{"a.example"}, Cert: "<cert>", Key: "<key>"}}
	s.StreamRoutes = []ir.StreamRoute{{Name: "s", Listener: ":9000", Backends: []ir.Backend{{Upstream: "a-up-0", Weight: 1}}}}
	s.Consumers = []ir.Consumer{{Name: "bob", Plugins: []ir.PluginSpec{{Name: "p", Config: json.RawMessage(`{"a":"<&>"}`)}}}}
	return reversion(s)
}

// TestItemsEncodeAsTheSnapshot: the cache file assembled from the items is the
// snapshot's JSON, byte for byte, and their hashes are its digest.
func TestItemsEncodeAsTheSnapshot(t *testing.T) {
	for name, s := range map[string]*ir.Snapshot{
		"full":  itemsSnapshot(),
		"empty": reversion(&ir.Snapshot{}),
		"hosts": buildHostsSnapshot("a", 3, 2),
	} {
		si := itemsOf(s)
		if !reflect.DeepEqual(si.digest(), s.Digest()) {
			t.Errorf("%s: item hashes differ from the snapshot's digest", name)
		}
		if v := si.digest().Version(); v != s.Version {
			t.Errorf("%s: version %s, want %s", name, v, s.Version)
		}
		got, err := si.encode(s.Version)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustJSON(t, s); string(got) != want {
			t.Errorf("%s: encoded\n%s\nwant\n%s", name, got, want)
		}
	}
}

// TestCacheAfterDelta: the cache written from the items of a snapshot rebuilt from a
// delta loads as that snapshot.
func TestCacheAfterDelta(t *testing.T) {
	base := itemsSnapshot()
	next := itemsSnapshot()
	next.Listeners[0].VirtualHosts[2].Routes[0].Method = "PUT"
	next.Listeners[0].Gateways = append(next.Listeners[0].Gateways, "b/http")
	next.Consumers = nil
	reversion(next)
	d, ok := diff(base, next)
	if !ok {
		t.Fatal("diff refused")
	}
	rebuilt, items, err := applyDelta(base, itemsOf(base), d)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/cache.json"
	if err := writeCache(path, rebuilt, items); err != nil {
		t.Fatal(err)
	}
	got, gotItems, err := loadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, next) || !reflect.DeepEqual(gotItems, items) {
		t.Fatal("the cache does not hold the rebuilt snapshot")
	}
}

// TestLoadCacheOfTheLegacyScheme: a cache file whose version is the hash of the whole
// snapshot's JSON (before per-item versions) loads, with its version in the new scheme.
func TestLoadCacheOfTheLegacyScheme(t *testing.T) {
	s := itemsSnapshot()
	c := *s
	c.Version = ""
	raw, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	c.Version = hex.EncodeToString(sum[:8])
	path := t.TempDir() + "/cache.json"
	if err := writeFileAtomic(path, []byte(mustJSON(t, &c))); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != s.Version || mustJSON(t, got) != mustJSON(t, s) {
		t.Fatalf("loaded version %s, want %s", got.Version, s.Version)
	}
	c.Listeners = c.Listeners[1:]
	if err := writeFileAtomic(path, []byte(mustJSON(t, &c))); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCache(path); err == nil {
		t.Fatal("a legacy file whose content changed loaded")
	}
}
