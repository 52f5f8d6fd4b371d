package serve

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/espdeck/espdeck/firmware"
)

// Manifests are generated per request from the published snapshot, with
// URLs built from the address the client used (which the server
// certificate names), so a board never learns a URL it cannot verify.
//
//	/fota/NAME.json     esp32FOTA: {"type","version","url"}
//	/esphome/NAME.json  ESPHome http_request / ESP Web Tools: {"name","version","builds":[{"chipFamily","ota":{"md5","path"}}]}
//	/ (or /index.json)  every image with its hashes and version

// FOTAManifest is esp32FOTA's JSON.
type FOTAManifest struct {
	Type    string `json:"type"`
	Version string `json:"version"`
	URL     string `json:"url"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Bin     string `json:"bin"`
}

// ESPHomeManifest is the ESP Web Tools manifest ESPHome's http_request
// update reads.
type ESPHomeManifest struct {
	Name    string         `json:"name"`
	Version string         `json:"version"`
	Builds  []ESPHomeBuild `json:"builds"`
}

// ESPHomeBuild is one build of an ESPHomeManifest.
type ESPHomeBuild struct {
	ChipFamily string     `json:"chipFamily"`
	OTA        ESPHomeOTA `json:"ota"`
}

// ESPHomeOTA says where the OTA image is and its MD5.
type ESPHomeOTA struct {
	MD5     string `json:"md5"`
	Path    string `json:"path"`
	SHA256  string `json:"sha256,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// IndexEntry describes one published file.
type IndexEntry struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Size    int64  `json:"size"`
	MD5     string `json:"md5"`
	SHA256  string `json:"sha256"`
	Chip    string `json:"chip,omitempty"`
	Project string `json:"project,omitempty"`
	Version string `json:"version,omitempty"`
	Signed  bool   `json:"signed"`
	Refused string `json:"refused,omitempty"`
}

func baseURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u
}

func imageURL(r *http.Request, name string) string {
	u := baseURL(r)
	u.Path = "/" + name
	return u.String()
}

// chipFamily is the ESP Web Tools spelling of a chip ("ESP32-C3").
func chipFamily(c firmware.Chip) string {
	if ci, ok := c.Info(); ok {
		return ci.Name
	}
	return ""
}

// Index lists the catalog for a client that reached the server at base
// (scheme://host:port).
func Index(cat *Catalog, r *http.Request) []IndexEntry {
	out := []IndexEntry{}
	for _, im := range cat.Images() {
		out = append(out, IndexEntry{Name: im.Name, URL: imageURL(r, im.Name), Size: im.Size(), MD5: im.MD5, SHA256: im.SHA256,
			Chip: chipFamily(im.Chip), Project: im.Project, Version: im.Version, Signed: im.Signed, Refused: im.Refused})
	}
	return out
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request, cat *Catalog) {
	writeJSON(w, r, Index(cat, r))
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, cat *Catalog, path string) {
	kind, file, _ := strings.Cut(path, "/")
	name, ok := strings.CutSuffix(file, ".json")
	im, found := cat.Lookup(name)
	if !ok || !found {
		plain(w, http.StatusNotFound, "no manifest "+strconv.Quote(path)+": ask for /"+kind+"/IMAGE.json where IMAGE is a served file")
		return
	}
	if im.Refused != "" {
		plain(w, http.StatusForbidden, "refused: "+im.Refused)
		return
	}
	switch kind {
	case "fota":
		writeJSON(w, r, FOTAManifestFor(im, r))
	case "esphome":
		writeJSON(w, r, ESPHomeManifestFor(im, r))
	}
}

// FOTAManifestFor is the esp32FOTA manifest of im as reached by r.
func FOTAManifestFor(im *Image, r *http.Request) FOTAManifest {
	u := baseURL(r)
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	typ := im.Project
	if typ == "" {
		typ = strings.TrimSuffix(im.Name, ".bin")
	}
	return FOTAManifest{Type: typ, Version: im.Version, URL: imageURL(r, im.Name), Host: u.Hostname(), Port: port, Bin: "/" + im.Name}
}

// ESPHomeManifestFor is the ESPHome / ESP Web Tools manifest of im.
func ESPHomeManifestFor(im *Image, r *http.Request) ESPHomeManifest {
	name := im.Project
	if name == "" {
		name = strings.TrimSuffix(im.Name, ".bin")
	}
	return ESPHomeManifest{Name: name, Version: im.Version, Builds: []ESPHomeBuild{{
		ChipFamily: chipFamily(im.Chip),
		OTA:        ESPHomeOTA{MD5: im.MD5, Path: imageURL(r, im.Name), SHA256: im.SHA256},
	}}}
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		plain(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
