// Package repo owns a node's directory on disk: the config, the identity key,
// the API token, the lock that keeps a second daemon out, the api address
// file and the badger datastore. It knows nothing of networking.
package repo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/agora-p2p/agora/node/config"
)

// Files inside a repo.
const (
	KeyFile       = "identity.key"
	TokenFile     = "api.token"
	APIFile       = "api"
	LockFile      = "repo.lock"
	DatastoreDir  = "datastore"
	AgentsDir     = "agents"
	EnvRepo       = "AGORA_REPO"
	defaultSubdir = ".agora"
)

// Errors a user can act on.
var (
	ErrExists         = errors.New("this repo is already initialised")
	ErrNotInitialised = errors.New("this repo is not initialised")
	ErrLocked         = errors.New("another Agora daemon is already running on this repo")
)

// DefaultPath is $AGORA_REPO, else ~/.agora.
func DefaultPath() string {
	if p := os.Getenv(EnvRepo); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return defaultSubdir
	}
	return filepath.Join(home, defaultSubdir)
}

// IsInitialised reports whether dir holds a config.
func IsInitialised(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, config.FileName))
	return err == nil
}

// Init creates a repo in dir with cfg, a new Ed25519 identity and API token,
// and an empty datastore. It refuses a dir that already holds a repo, and on
// failure removes what it wrote.
func Init(dir string, cfg config.Config) (crypto.PrivKey, error) {
	if IsInitialised(dir) {
		return nil, fmt.Errorf("%w: %s already has a %s; use it as it is, or choose another --repo", ErrExists, dir, config.FileName)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	existed := true
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		existed = false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repo: %w", err)
	}
	written := []string{}
	fail := func(err error) (crypto.PrivKey, error) {
		for _, p := range written {
			os.RemoveAll(p)
		}
		if !existed {
			os.Remove(dir)
		}
		return nil, err
	}
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return fail(fmt.Errorf("generate identity: %w", err))
	}
	keyBytes, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return fail(fmt.Errorf("encode identity: %w", err))
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return fail(fmt.Errorf("generate api token: %w", err))
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyFile, keyBytes}, {TokenFile, []byte(hex.EncodeToString(tok) + "\n")}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return fail(fmt.Errorf("write %s: %w", f.name, err))
		}
		written = append(written, p)
	}
	for _, d := range []string{DatastoreDir, AgentsDir} {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fail(fmt.Errorf("create %s: %w", d, err))
		}
		written = append(written, p)
	}
	db, err := OpenDatastore(filepath.Join(dir, DatastoreDir), cfg.Profile)
	if err != nil {
		return fail(err)
	}
	if err := db.Close(); err != nil {
		return fail(fmt.Errorf("close datastore: %w", err))
	}
	cfgPath := filepath.Join(dir, config.FileName)
	written = append(written, cfgPath) // config last: it marks the repo initialised
	if err := cfg.Save(cfgPath); err != nil {
		return fail(err)
	}
	return priv, nil
}

// Repo is an opened, locked repo.
type Repo struct {
	Dir    string
	Config config.Config
	Key    crypto.PrivKey
	Token  string
	lock   *os.File
}

// Open locks dir and reads its config, key and token. The lock is an flock,
// so it is released by the kernel even when the daemon is killed -9.
func Open(dir string) (*Repo, error) {
	if !IsInitialised(dir) {
		return nil, fmt.Errorf("%w: %s has no %s; run `agora init --repo %s` (or `agora up`) first", ErrNotInitialised, dir, config.FileName, dir)
	}
	lockPath := filepath.Join(dir, LockFile)
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(lockPath)
		lf.Close()
		holder := ""
		if p := strings.TrimSpace(string(pid)); p != "" {
			holder = " (pid " + p + ")"
		}
		return nil, fmt.Errorf("%w%s: %s; stop it first, or use another --repo", ErrLocked, holder, dir)
	}
	lf.Truncate(0)
	lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	r := &Repo{Dir: dir, lock: lf}
	fail := func(err error) (*Repo, error) {
		r.Close()
		return nil, err
	}
	if r.Config, err = config.Load(filepath.Join(dir, config.FileName)); err != nil {
		return fail(err)
	}
	if r.Key, err = ReadKey(dir); err != nil {
		return fail(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return fail(fmt.Errorf("read api token: %w", err))
	}
	if r.Token = strings.TrimSpace(string(tok)); len(r.Token) < 32 {
		return fail(fmt.Errorf("%s in %s is damaged (too short); write a new one with `openssl rand -hex 32 > %s` and restart", TokenFile, dir, filepath.Join(dir, TokenFile)))
	}
	return r, nil
}

// ReadKey reads the identity key of the repo in dir.
func ReadKey(dir string) (crypto.PrivKey, error) {
	p := filepath.Join(dir, KeyFile)
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %v); run `chmod 600 %s`", p, st.Mode().Perm(), p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid identity key: %w", p, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%s holds a %v key; Agora identities are Ed25519", p, k.Type())
	}
	return k, nil
}

// Path joins name onto the repo dir.
func (r *Repo) Path(name string) string { return filepath.Join(r.Dir, name) }

// OpenDatastore opens the repo's badger datastore.
func (r *Repo) OpenDatastore() (*Datastore, error) {
	return OpenDatastore(r.Path(DatastoreDir), r.Config.Profile)
}

// WriteAPIAddr records where the running daemon's API listens, for the CLI.
func (r *Repo) WriteAPIAddr(addr string) error {
	tmp := r.Path(APIFile + ".tmp")
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o600); err != nil {
		return fmt.Errorf("write api address: %w", err)
	}
	return os.Rename(tmp, r.Path(APIFile))
}

// Close removes the api file and releases the lock.
func (r *Repo) Close() error {
	os.Remove(r.Path(APIFile))
	if r.lock != nil {
		r.lock.Truncate(0)
		syscall.Flock(int(r.lock.Fd()), syscall.LOCK_UN)
		err := r.lock.Close()
		r.lock = nil
		return err
	}
	return nil
}
