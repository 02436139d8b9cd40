package repo

import (
	"fmt"

	"errors"
	"github.com/dgraph-io/badger/v4"
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-p2p/agora/node/config"
)

func testConfig() config.Config {
	c := config.Default()
	c.API.Listen = "127.0.0.1:0"
	return c
}

func TestInitWritesRepo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	key, err := Init(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{KeyFile, TokenFile, config.FileName} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(filepath.Join(dir, DatastoreDir)); err != nil || !st.IsDir() {
		t.Fatalf("datastore: %v", err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Key.Equals(key) || len(r.Token) != 64 || r.Config.API.Listen != "127.0.0.1:0" {
		t.Fatalf("reopened repo differs: token %q, config %+v", r.Token, r.Config)
	}
}

func TestInitRefusesExistingRepo(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, testConfig()); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	_, err := Init(dir, testConfig())
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if string(key) != string(again) {
		t.Fatal("second Init changed the identity key")
	}
}

func TestInitRejectsBadConfigAndWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	c := testConfig()
	c.Profile = "turbo"
	if _, err := Init(dir, c); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Init left %s behind: %v", dir, err)
	}
}

func TestOpenLocks(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, testConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := r.WriteAPIAddr("127.0.0.1:1234"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := os.Stat(filepath.Join(dir, APIFile)); !os.IsNotExist(err) {
		t.Fatal("api file left after Close")
	}
	r2, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	r2.Close()
}

func TestOpenRejectsUninitialisedAndLooseKey(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("Open of empty dir: %v", err)
	}
	dir := t.TempDir()
	if _, err := Init(dir, testConfig()); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, err := Open(dir); err == nil {
		t.Fatal("world-readable identity key accepted")
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o600)
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("garbage"), 0o600)
	if _, err := Open(dir); err == nil {
		t.Fatal("garbage identity key accepted")
	}
}

func TestDatastoreCompactsWithoutBadgerCompactors(t *testing.T) {
	d, err := OpenDatastore(t.TempDir(), config.ProfileLowPower)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	val := make([]byte, 512)
	// 4 MiB memtables: ~40k writes of 512 B fill several L0 tables.
	for batch := 0; batch < 40; batch++ {
		wb := d.NewWriteBatch()
		for i := 0; i < 1000; i++ {
			val[0], val[1] = byte(i), byte(batch)
			if err := wb.Set([]byte(fmt.Sprintf("k/%02d/%04d", batch, i)), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	tables := 0
	for _, l := range d.Levels() {
		tables += l.NumTables
	}
	if tables < 2 {
		t.Fatalf("the writes made only %d tables; the test needs more data", tables)
	}
	if err := d.Compact(); err != nil {
		t.Fatal(err)
	}
	if d.NeedsCompaction() {
		t.Fatalf("still out of shape after Compact: %+v", d.Levels())
	}
	err = d.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("k/39/0999"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if v[1] != 39 {
				return fmt.Errorf("wrong value %v", v[:2])
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
