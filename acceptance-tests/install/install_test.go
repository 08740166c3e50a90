// Package install checks a release the way a user installs a provider: `init` from the
// packed filesystem mirror and from the network-mirror index, offline, with every CLI in
// TFPI_INSTALL_CLIS; the lock file records the release's hashes; a tampered zip is refused.
//
// It reads the output of acceptance-tests/tools/release.sh (`make release-check` runs both):
//
//	TFPI_RELEASE_DIR      the release directory (zips, SHA256SUMS, manifest, mirror/)
//	TFPI_RELEASE_VERSION  the version released
//	TFPI_INSTALL_CLIS     Terraform / OpenTofu binaries, separated by spaces
//	GNUPGHOME             a keyring with the public key SHA256SUMS.sig was made with
//
// Expected hashes are computed here from the zips (zh: is the zip's SHA-256, h1: Terraform's
// hash of the unpacked files), never taken from the release's own index; the CLIs judge.
package install

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

const (
	providerType   = "istio"
	providerSource = "terraform-provider-istio/istio"
	name           = "terraform-provider-istio"
)

// release is what release.sh produced, as the test reads it.
type release struct {
	dir     string
	version string
	// platform ("linux_amd64") -> zip path
	zips map[string]string
}

func loadRelease(t *testing.T) release {
	t.Helper()
	dir, version := os.Getenv("TFPI_RELEASE_DIR"), os.Getenv("TFPI_RELEASE_VERSION")
	if dir == "" || version == "" {
		t.Fatal("TFPI_RELEASE_DIR and TFPI_RELEASE_VERSION must be set: run `make release-check`")
	}
	matches, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%s_%s_*.zip", name, version)))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no %s_%s_<os>_<arch>.zip in %s (%v)", name, version, dir, err)
	}
	r := release{dir: dir, version: version, zips: map[string]string{}}
	prefix := fmt.Sprintf("%s_%s_", name, version)
	for _, path := range matches {
		r.zips[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), prefix), ".zip")] = path
	}
	if _, ok := r.zips[hostPlatform()]; !ok {
		t.Fatalf("the release has no zip for this machine's platform %s: %v", hostPlatform(), matches)
	}
	return r
}

func hostPlatform() string { return runtime.GOOS + "_" + runtime.GOARCH }

func (r release) file(suffix string) string {
	return filepath.Join(r.dir, fmt.Sprintf("%s_%s_%s", name, r.version, suffix))
}

func (r release) mirror() string { return filepath.Join(r.dir, "mirror") }

func (r release) binaryName() string { return fmt.Sprintf("%s_v%s", name, r.version) }

var cliVersion = regexp.MustCompile(`(?m)^(Terraform|OpenTofu) v\S+`)

// clis are the Terraform / OpenTofu binaries to install with, by their `version` line.
func clis(t *testing.T) map[string]string {
	t.Helper()
	paths := strings.Fields(os.Getenv("TFPI_INSTALL_CLIS"))
	if len(paths) == 0 {
		t.Fatal("TFPI_INSTALL_CLIS is empty: run `make release-check` (Terraform 1.0.3 and the newest OpenTofu of tools.env)")
	}
	byName := map[string]string{}
	for _, path := range paths {
		cmd := exec.Command(path, "version")
		cmd.Env = cleanEnv()
		out, err := cmd.Output()
		name := cliVersion.FindString(string(out))
		if err != nil || name == "" {
			t.Fatalf("%s version: %v\n%s", path, err, out)
		}
		byName[name] = path
	}
	return byName
}

// ---- hashes, computed here ------------------------------------------------------------

func zipHash(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("zh:%x", sha256.Sum256(data))
}

// h1Hash is Terraform's "h1:" package hash: SHA-256 over the lines "<sha256 hex>  <name>\n"
// of the archive's files in name order, base64-encoded.
func h1Hash(t *testing.T, path string) string {
	t.Helper()
	archive, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer archive.Close()
	var lines []string
	for _, f := range archive.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		lines = append(lines, fmt.Sprintf("%x  %s\n", sum.Sum(nil), f.Name))
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// ---- the artefacts themselves ---------------------------------------------------------

func TestReleaseArtefacts(t *testing.T) {
	r := loadRelease(t)

	t.Run("SHA256SUMS lists every zip and the manifest with their real checksums", func(t *testing.T) {
		data, err := os.ReadFile(r.file("SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			fields := strings.Fields(line)
			if len(fields) != 2 {
				t.Fatalf("SHA256SUMS line %q is not '<sha256>  <file>'", line)
			}
			listed[fields[1]] = "zh:" + fields[0]
		}
		want := []string{filepath.Base(r.file("manifest.json"))}
		for _, path := range r.zips {
			want = append(want, filepath.Base(path))
		}
		for _, file := range want {
			if got, ok := listed[file]; !ok {
				t.Errorf("SHA256SUMS does not list %s", file)
			} else if real := zipHash(t, filepath.Join(r.dir, file)); got != real {
				t.Errorf("SHA256SUMS says %s for %s, the file's SHA-256 is %s", got, file, real)
			}
		}
		if len(listed) != len(want) {
			t.Errorf("SHA256SUMS lists %d files, want %d: %v", len(listed), len(want), listed)
		}
	})

	t.Run("SHA256SUMS.sig is a valid signature of SHA256SUMS (gpg, GNUPGHOME has the key)", func(t *testing.T) {
		out, err := exec.Command("gpg", "--batch", "--verify", r.file("SHA256SUMS.sig"), r.file("SHA256SUMS")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Good signature") {
			t.Errorf("gpg --verify: %v\n%s", err, out)
		}
	})

	t.Run("manifest announces protocol 6.0", func(t *testing.T) {
		var manifest struct {
			Version  int `json:"version"`
			Metadata struct {
				ProtocolVersions []string `json:"protocol_versions"`
			} `json:"metadata"`
		}
		readJSON(t, r.file("manifest.json"), &manifest)
		if manifest.Version != 1 || !slices.Equal(manifest.Metadata.ProtocolVersions, []string{"6.0"}) {
			t.Errorf("manifest = %+v, want version 1 and protocol_versions [6.0]", manifest)
		}
	})

	t.Run("each zip holds only the executable binary named as Terraform expects", func(t *testing.T) {
		for platform, path := range r.zips {
			archive, err := zip.OpenReader(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var names []string
			for _, f := range archive.File {
				names = append(names, f.Name)
				if f.Mode().Perm()&0o111 == 0 {
					t.Errorf("%s: %s is not executable (%v)", platform, f.Name, f.Mode())
				}
			}
			archive.Close()
			if !slices.Equal(names, []string{r.binaryName()}) {
				t.Errorf("%s holds %v, want [%s]", platform, names, r.binaryName())
			}
		}
	})

	t.Run("network-mirror index lists the version and each zip with its h1 and zh hashes", func(t *testing.T) {
		for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
			dir := filepath.Join(r.mirror(), host, providerSource)
			var index struct {
				Versions map[string]any `json:"versions"`
			}
			readJSON(t, filepath.Join(dir, "index.json"), &index)
			if _, ok := index.Versions[r.version]; !ok {
				t.Errorf("%s index.json does not list %s: %v", host, r.version, index.Versions)
			}
			var versionIndex struct {
				Archives map[string]struct {
					URL    string   `json:"url"`
					Hashes []string `json:"hashes"`
				} `json:"archives"`
			}
			readJSON(t, filepath.Join(dir, r.version+".json"), &versionIndex)
			if len(versionIndex.Archives) != len(r.zips) {
				t.Errorf("%s %s.json lists %d archives, the release has %d", host, r.version, len(versionIndex.Archives), len(r.zips))
			}
			for platform, path := range r.zips {
				archive := versionIndex.Archives[platform]
				packed := filepath.Join(dir, archive.URL)
				if archive.URL != filepath.Base(path) {
					t.Errorf("%s %s: url %q, want %q", host, platform, archive.URL, filepath.Base(path))
					continue
				}
				want := []string{h1Hash(t, path), zipHash(t, path)}
				if !slices.Equal(archive.Hashes, want) {
					t.Errorf("%s %s: hashes %v, want %v", host, platform, archive.Hashes, want)
				}
				if got := zipHash(t, packed); got != want[1] {
					t.Errorf("%s: the mirror's %s differs from the released zip (%s, want %s)", host, archive.URL, got, want[1])
				}
			}
		}
	})
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// ---- installing -----------------------------------------------------------------------

// workDir is a configuration that needs only this provider, at the released version.
func workDir(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("terraform {\n  required_providers {\n    %s = {\n      source  = %q\n      version = %q\n    }\n  }\n}\n",
		providerType, providerSource, version)
	writeFile(t, filepath.Join(dir, "main.tf"), config)
	return dir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// initResult is what `init` did: its output, and the lock entry it left for the provider.
type initResult struct {
	err     error
	output  string
	version string
	hashes  []string
}

// runInit runs `<cli> init` in dir with only the given provider_installation block, offline.
func runInit(t *testing.T, cli, dir, installation string, extraEnv ...string) initResult {
	t.Helper()
	config := filepath.Join(t.TempDir(), "cli.tfrc")
	writeFile(t, config, "provider_installation {\n"+installation+"}\n")
	cmd := exec.Command(cli, "init", "-input=false", "-no-color")
	cmd.Dir = dir
	cmd.Env = append(offlineEnv(config), extraEnv...)
	out, err := cmd.CombinedOutput()
	result := initResult{err: err, output: string(out)}
	result.version, result.hashes = lockEntry(t, filepath.Join(dir, ".terraform.lock.hcl"))
	return result
}

// offlineEnv is the CLI's environment: only the given CLI config, and every request except
// to loopback sent to a proxy that does not exist.
func offlineEnv(cliConfig string) []string {
	return append(cleanEnv(),
		"TF_CLI_CONFIG_FILE="+cliConfig,
		"CHECKPOINT_DISABLE=1",
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9",
		"TF_IN_AUTOMATION=1",
	)
}

// cleanEnv is this process's environment without Terraform's, OpenTofu's and proxy variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		key := strings.ToUpper(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(key, "TF_") || strings.HasPrefix(key, "TOFU_") || strings.HasSuffix(key, "_PROXY") ||
			key == "SSL_CERT_FILE" || key == "SSL_CERT_DIR" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

var (
	lockBlock  = regexp.MustCompile(`(?s)provider "[^"]+/` + regexp.QuoteMeta(providerSource) + `" \{(.*?)\n\}`)
	lockVer    = regexp.MustCompile(`version\s*=\s*"([^"]+)"`)
	lockHashes = regexp.MustCompile(`"((?:h1|zh):[^"]+)"`)
)

// lockEntry reads the provider's version and hashes from a lock file (none if absent).
func lockEntry(t *testing.T, path string) (string, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", nil
	} else if err != nil {
		t.Fatal(err)
	}
	block := lockBlock.FindSubmatch(data)
	if block == nil {
		return "", nil
	}
	var version string
	if m := lockVer.FindSubmatch(block[1]); m != nil {
		version = string(m[1])
	}
	var hashes []string
	for _, m := range lockHashes.FindAllSubmatch(block[1], -1) {
		hashes = append(hashes, string(m[1]))
	}
	sort.Strings(hashes)
	return version, hashes
}

// pinnedLock is the lock file a user writes from the published SHA256SUMS: the zh: hash
// of every platform's zip, so that init accepts only those zips.
func pinnedLock(t *testing.T, r release, host string) string {
	t.Helper()
	var hashes []string
	for _, path := range r.zips {
		hashes = append(hashes, zipHash(t, path))
	}
	sort.Strings(hashes)
	var list strings.Builder
	for _, hash := range hashes {
		fmt.Fprintf(&list, "    %q,\n", hash)
	}
	return fmt.Sprintf("provider \"%s/%s\" {\n  version     = %q\n  constraints = %q\n  hashes = [\n%s  ]\n}\n",
		host, providerSource, r.version, r.version, list.String())
}

// registryHost is where the CLI looks for a provider without a host in its source.
func registryHost(cliName string) string {
	if strings.HasPrefix(cliName, "OpenTofu") {
		return "registry.opentofu.org"
	}
	return "registry.terraform.io"
}

// installed is the provider binary init unpacked into the working directory.
func installed(r release, dir, cliName string) string {
	return filepath.Join(dir, ".terraform", "providers", registryHost(cliName), providerSource, r.version, hostPlatform(), r.binaryName())
}

// checkInstalled asserts init succeeded, the lock records the version and the h1 of this
// platform's zip plus the required hashes, and no hash that is not of a released zip; and
// the unpacked binary reports the version. (Some CLIs also record a mirror's listed hashes.)
func checkInstalled(t *testing.T, r release, dir, cliName string, result initResult, required ...string) {
	t.Helper()
	if result.err != nil {
		t.Fatalf("init failed: %v\n%s", result.err, result.output)
	}
	if result.version != r.version {
		t.Errorf("lock file records version %q, want %q\n%s", result.version, r.version, result.output)
	}
	required = append(required, h1Hash(t, r.zips[hostPlatform()]))
	for _, hash := range required {
		if !slices.Contains(result.hashes, hash) {
			t.Errorf("lock file hashes %v lack %s", result.hashes, hash)
		}
	}
	var released []string
	for _, path := range r.zips {
		released = append(released, h1Hash(t, path), zipHash(t, path))
	}
	for _, hash := range result.hashes {
		if !slices.Contains(released, hash) {
			t.Errorf("lock file records %s, which is no hash of a released zip (%v)", hash, released)
		}
	}
	t.Logf("lock file hashes: %v", result.hashes)
	out, err := exec.Command(installed(r, dir, cliName), "--version").Output()
	if got, wantVersion := strings.TrimSpace(string(out)), name+" "+r.version; err != nil || got != wantVersion {
		t.Errorf("installed binary --version = %q (%v), want %q", got, err, wantVersion)
	}
}

// checkRefused asserts init failed on a checksum and installed nothing.
func checkRefused(t *testing.T, r release, dir, cliName string, result initResult) {
	t.Helper()
	if result.err == nil {
		t.Fatalf("init accepted a tampered zip:\n%s", result.output)
	}
	if !strings.Contains(strings.ToLower(result.output), "checksum") {
		t.Errorf("init failed, but not on a checksum:\n%s", result.output)
	}
	t.Logf("refused as expected:\n%s", refusal(result.output))
	if _, err := os.Stat(installed(r, dir, cliName)); err == nil {
		t.Errorf("init failed but left the tampered binary installed")
	}
}

// refusal is the error part of init's output.
func refusal(output string) string {
	if i := strings.Index(output, "Error:"); i >= 0 {
		return strings.TrimSpace(output[i:])
	}
	return strings.TrimSpace(output)
}

// tamperedMirror is a copy of the release's mirror for one registry host whose zip for this
// platform has one byte of the binary changed (still a valid zip, same name, same index files).
func tamperedMirror(t *testing.T, r release, host string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, host), os.DirFS(filepath.Join(r.mirror(), host))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, host, providerSource, filepath.Base(r.zips[hostPlatform()]))
	binary := readZipMember(t, path, r.binaryName())
	binary[len(binary)/2] ^= 0xff
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	header := &zip.FileHeader{Name: r.binaryName(), Method: zip.Store}
	header.SetMode(0o755)
	fw, err := w.CreateHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(binary); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readZipMember(t *testing.T, path, member string) []byte {
	t.Helper()
	archive, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer archive.Close()
	rc, err := archive.Open(member)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// filesystemMirror is README.md's filesystem_mirror block, pointed at path.
func filesystemMirror(t *testing.T, path string) string {
	return readmeInstallation(t, "filesystem_mirror", "/path/to/release/mirror", path)
}

// readmeInstallation is the body of the provider_installation block that README.md's "Install
// from a release" shows for the given mirror kind, with its placeholder location replaced by
// the real one: the tests install with the very block users copy, so the README cannot rot.
func readmeInstallation(t *testing.T, kind, placeholder, location string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(readme), "\n## Install from a release\n")
	if !found {
		t.Fatal(`README.md has no "## Install from a release" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, block := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(section, -1) {
		text := strings.TrimSpace(block[1])
		if !strings.Contains(text, kind+" {") {
			continue
		}
		body, ok := strings.CutPrefix(text, "provider_installation {")
		if !ok || !strings.HasSuffix(body, "}") || !strings.Contains(body, placeholder) {
			t.Fatalf("README.md's %s block is not `provider_installation { ... }` naming %q:\n%s", kind, placeholder, text)
		}
		return strings.Replace(strings.TrimSuffix(body, "}"), placeholder, location, 1)
	}
	t.Fatalf("README.md's \"Install from a release\" has no provider_installation block with %s", kind)
	return ""
}

func TestInstallFromPackedFilesystemMirror(t *testing.T) {
	r := loadRelease(t)
	for cliName, cli := range clis(t) {
		t.Run(cliName, func(t *testing.T) {
			host := registryHost(cliName)

			t.Run("first init records the package hash", func(t *testing.T) {
				dir := workDir(t, r.version)
				checkInstalled(t, r, dir, cliName, runInit(t, cli, dir, filesystemMirror(t, r.mirror())))
			})

			t.Run("a lock pinned to the published zh hashes accepts the zip and keeps them", func(t *testing.T) {
				dir := workDir(t, r.version)
				writeFile(t, filepath.Join(dir, ".terraform.lock.hcl"), pinnedLock(t, r, host))
				var published []string
				for _, path := range r.zips {
					published = append(published, zipHash(t, path))
				}
				checkInstalled(t, r, dir, cliName, runInit(t, cli, dir, filesystemMirror(t, r.mirror())), published...)
			})

			t.Run("providers lock records the h1 hash of every released platform", func(t *testing.T) {
				dir := workDir(t, r.version)
				args := []string{"providers", "lock", "-fs-mirror=" + r.mirror()}
				var want []string
				for platform, path := range r.zips {
					args = append(args, "-platform="+platform)
					want = append(want, h1Hash(t, path))
				}
				sort.Strings(want)
				cmd := exec.Command(cli, args...)
				cmd.Dir = dir
				cmd.Env = offlineEnv(filepath.Join(t.TempDir(), "none.tfrc"))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s %v: %v\n%s", cli, args, err, out)
				}
				version, hashes := lockEntry(t, filepath.Join(dir, ".terraform.lock.hcl"))
				if version != r.version || !slices.Equal(hashes, want) {
					t.Errorf("lock file: version %q hashes %v, want %q %v", version, hashes, r.version, want)
				}
			})

			t.Run("a lock pinned to the published zh hashes refuses a tampered zip", func(t *testing.T) {
				dir := workDir(t, r.version)
				writeFile(t, filepath.Join(dir, ".terraform.lock.hcl"), pinnedLock(t, r, host))
				checkRefused(t, r, dir, cliName, runInit(t, cli, dir, filesystemMirror(t, tamperedMirror(t, r, host))))
			})
		})
	}
}

// mirrorServer serves a directory over HTTPS on loopback and records the paths asked for.
type mirrorServer struct {
	*httptest.Server
	caFile string
	mu     sync.Mutex
	paths  []string
}

func serveMirror(t *testing.T, dir string) *mirrorServer {
	t.Helper()
	s := &mirrorServer{}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, req.URL.Path)
		s.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "mirror-ca.pem")
	writeFile(t, s.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})))
	return s
}

func (s *mirrorServer) served(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.paths, path)
}

// installation is README.md's network_mirror block, pointed at this server.
func (s *mirrorServer) installation(t *testing.T) string {
	return readmeInstallation(t, "network_mirror", "https://mirror.example.com/", s.URL+"/")
}

func TestInstallFromNetworkMirror(t *testing.T) {
	r := loadRelease(t)
	for cliName, cli := range clis(t) {
		t.Run(cliName, func(t *testing.T) {
			zipPath := "/" + registryHost(cliName) + "/" + providerSource + "/" + filepath.Base(r.zips[hostPlatform()])

			t.Run("init installs from the index and records the package hash", func(t *testing.T) {
				server := serveMirror(t, r.mirror())
				dir := workDir(t, r.version)
				result := runInit(t, cli, dir, server.installation(t), "SSL_CERT_FILE="+server.caFile)
				checkInstalled(t, r, dir, cliName, result)
				if !server.served(zipPath) {
					t.Errorf("the zip was not downloaded from the mirror (requests: %v)", server.paths)
				}
			})

			t.Run("the index's hashes refuse a tampered zip", func(t *testing.T) {
				server := serveMirror(t, tamperedMirror(t, r, registryHost(cliName)))
				dir := workDir(t, r.version)
				result := runInit(t, cli, dir, server.installation(t), "SSL_CERT_FILE="+server.caFile)
				checkRefused(t, r, dir, cliName, result)
				if !server.served(zipPath) {
					t.Errorf("the tampered zip was never asked for, so it was not what was refused (requests: %v)", server.paths)
				}
			})
		})
	}
}
