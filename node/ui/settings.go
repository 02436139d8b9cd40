package ui

// The Settings page: the node's configuration keys with the values this
// run uses, read-only. Changing one is `agora config set` and a restart.

import (
	"net/http"
	"strings"

	"github.com/agora-p2p/agora/node/config"
)

func init() {
	addNav(60, "settings", "Settings", "/settings")
	addRoute("GET /settings", (*Server).settings)
}

// Setting is one configuration key as the Settings page shows it.
type Setting struct{ Key, Value, Help, Env, Flag string }

// Lines are the value's items, one for a plain key, one per entry for a
// list (comma-separated in Value); none when empty.
func (s Setting) Lines() []string {
	if s.Value == "" {
		return nil
	}
	return strings.Split(s.Value, ",")
}

// ConfigSettings lists every key of c with its value, its environment
// variable and its flag, for Config.Settings.
func ConfigSettings(c *config.Config) []Setting {
	keys := config.Keys()
	out := make([]Setting, 0, len(keys))
	for _, k := range keys {
		v, err := c.Get(k.Name)
		if err != nil {
			continue // cannot happen: the name comes from Keys
		}
		out = append(out, Setting{Key: k.Name, Value: v, Help: k.Help, Env: k.Env(), Flag: "--" + k.Flag()})
	}
	return out
}

func (s *Server) settings(w http.ResponseWriter, r *http.Request, sess *session) {
	var list []Setting
	if s.cfg.Settings != nil {
		list = s.cfg.Settings()
	}
	s.render(w, http.StatusOK, "settings.html", page{Title: "Settings", Nav: "settings", CSRF: sess.csrf, Data: list})
}
