package gcpkmsfake

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// MaxPayload is the largest plaintext and additional data Encrypt accepts,
// as in Cloud KMS (64 KiB).
const MaxPayload = 64 * 1024

// Faults are the failures a Server injects. The zero value injects none.
type Faults struct {
	// Code, when not codes.OK, makes every call fail with that status code.
	Code codes.Code
	// Delay holds every call that long before it is served (or until the
	// caller's deadline).
	Delay time.Duration
	// WrongName puts another resource name in responses that carry one.
	WrongName bool
	// CorruptResponseCRC changes the checksum of the response payload
	// (signature_crc32c, pem_crc32c, ciphertext_crc32c, plaintext_crc32c).
	CorruptResponseCRC bool
	// CorruptPayload flips a bit of the response payload (signature, PEM,
	// ciphertext, plaintext) after its checksum was computed, as a
	// corruption in transit would.
	CorruptPayload bool
	// UnverifiedDigest, UnverifiedPlaintext and UnverifiedAAD clear
	// verified_digest_crc32c, verified_plaintext_crc32c and
	// verified_additional_authenticated_data_crc32c.
	UnverifiedDigest, UnverifiedPlaintext, UnverifiedAAD bool
	// BadSignature makes AsymmetricSign sign another digest, with
	// consistent checksums: a backend fault that only a signature check
	// catches.
	BadSignature bool
	// PendingGeneration is how many GetCryptoKeyVersion answers report
	// PENDING_GENERATION before the version shows its real state.
	PendingGeneration int
}

// Server is an in-process Cloud KMS. Create it with NewServer or Start.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	grpc *grpc.Server
	lis  net.Listener

	mu      sync.Mutex
	rings   map[string]time.Time
	keys    map[string]*cryptoKey
	faults  Faults
	pending int
	calls   map[string]int
}

type cryptoKey struct {
	name     string
	purpose  kmspb.CryptoKey_CryptoKeyPurpose
	template *kmspb.CryptoKeyVersionTemplate
	labels   map[string]string
	created  time.Time
	primary  int // version id, 0 for none
	versions []*version
}

type version struct {
	name      string
	alg       kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm
	level     kmspb.ProtectionLevel
	state     kmspb.CryptoKeyVersion_CryptoKeyVersionState
	created   time.Time
	destroyAt time.Time
	ecKey     *ecdsa.PrivateKey
	rsaKey    *rsa.PrivateKey
	aead      cipher.AEAD
}

// NewServer starts a Server on 127.0.0.1 with a random port. Close stops it.
func NewServer() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("gcpkmsfake: listen: %w", err)
	}
	s := &Server{
		lis:   lis,
		rings: map[string]time.Time{},
		keys:  map[string]*cryptoKey{},
		calls: map[string]int{},
	}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	kmspb.RegisterKeyManagementServiceServer(s.grpc, s)
	go func() { _ = s.grpc.Serve(lis) }() // returns when Close stops the server
	return s, nil
}

// Start starts a Server for the test tb and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := NewServer()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's address, 127.0.0.1:PORT.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the server at once, failing calls in flight.
func (s *Server) Close() { s.grpc.Stop() }

// ClientOptions are the options the real client needs to reach this server:
// its endpoint, no authentication, no TLS.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Client returns a real KeyManagementClient connected to s, closed when tb
// ends.
func (s *Server) Client(tb testing.TB) *kms.KeyManagementClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kms.NewKeyManagementClient(ctx, s.ClientOptions()...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// SetFaults replaces the injected faults; Faults{} clears them.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.pending = f.PendingGeneration
}

// Calls is how many times the method (e.g. "AsymmetricSign") was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls[path.Base(info.FullMethod)]++
	f := s.faults
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if f.Code != codes.OK {
		return nil, status.Errorf(f.Code, "gcpkmsfake: injected %v", f.Code)
	}
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, err
	}
	corrupt(resp, f)
	return resp, nil
}

// corrupt applies f's response faults to resp: each response type names
// its resource name, checksum and payload, and the faults apply to them
// the same way.
func corrupt(resp any, f Faults) {
	var (
		name    *string
		crc     **wrapperspb.Int64Value
		payload []byte
	)
	switch r := resp.(type) {
	case *kmspb.AsymmetricSignResponse:
		name, crc, payload = &r.Name, &r.SignatureCrc32C, r.Signature
		if f.UnverifiedDigest {
			r.VerifiedDigestCrc32C = false
		}
	case *kmspb.PublicKey:
		pem := []byte(r.Pem)
		name, crc, payload = &r.Name, &r.PemCrc32C, pem
		defer func() { r.Pem = string(pem) }() // once the payload fault is applied
	case *kmspb.EncryptResponse:
		name, crc, payload = &r.Name, &r.CiphertextCrc32C, r.Ciphertext
		if f.UnverifiedPlaintext {
			r.VerifiedPlaintextCrc32C = false
		}
		if f.UnverifiedAAD {
			r.VerifiedAdditionalAuthenticatedDataCrc32C = false
		}
	case *kmspb.DecryptResponse:
		crc, payload = &r.PlaintextCrc32C, r.Plaintext
	case *kmspb.CryptoKeyVersion:
		name = &r.Name
	case *kmspb.CryptoKey:
		name = &r.Name
	}
	if f.WrongName && name != nil {
		*name = otherName(*name)
	}
	if f.CorruptResponseCRC && crc != nil {
		*crc = wrapperspb.Int64((*crc).GetValue() ^ 1)
	}
	if f.CorruptPayload && len(payload) > 0 {
		payload[len(payload)/2] ^= 1
	}
}

// otherName names the same resource under another crypto key: its
// cryptoKeys id gets a suffix.
func otherName(name string) string {
	i := strings.Index(name, "/cryptoKeys/")
	if i < 0 {
		return name + "-other"
	}
	i += len("/cryptoKeys/")
	j := strings.IndexByte(name[i:], '/')
	if j < 0 {
		return name + "-other"
	}
	return name[:i+j] + "-other" + name[i+j:]
}

// CRC32C is the checksum Cloud KMS uses in its integrity fields.
func CRC32C(b []byte) int64 {
	return int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

var idRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

var (
	labelKeyRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

// splitName checks that name is "projects/P/locations/L[/keyRings/R[/cryptoKeys/K[/cryptoKeyVersions/V]]]"
// with depth collection/id pairs.
func splitName(name string, depth int) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 2*depth {
		return false
	}
	for i, c := range []string{"projects", "locations", "keyRings", "cryptoKeys", "cryptoKeyVersions"}[:depth] {
		if parts[2*i] != c || !idRE.MatchString(parts[2*i+1]) {
			return false
		}
	}
	return true
}

func (s *Server) CreateKeyRing(_ context.Context, req *kmspb.CreateKeyRingRequest) (*kmspb.KeyRing, error) {
	if !splitName(req.GetParent(), 2) || !idRE.MatchString(req.GetKeyRingId()) {
		return nil, status.Error(codes.InvalidArgument, "invalid parent or key_ring_id")
	}
	name := req.GetParent() + "/keyRings/" + req.GetKeyRingId()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rings[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "%s already exists", name)
	}
	s.rings[name] = time.Now()
	return &kmspb.KeyRing{Name: name, CreateTime: timestamppb.New(s.rings[name])}, nil
}

func (s *Server) GetKeyRing(_ context.Context, req *kmspb.GetKeyRingRequest) (*kmspb.KeyRing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.rings[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", req.GetName())
	}
	return &kmspb.KeyRing{Name: req.GetName(), CreateTime: timestamppb.New(t)}, nil
}

var signAlgs = map[kmspb.CryptoKeyVersion_CryptoKeyVersionAlgorithm]bool{
	kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256:        true,
	kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:        true,
	kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256: true,
	kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256:   true,
}

func (s *Server) CreateCryptoKey(_ context.Context, req *kmspb.CreateCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	if !splitName(req.GetParent(), 3) || !idRE.MatchString(req.GetCryptoKeyId()) {
		return nil, status.Error(codes.InvalidArgument, "invalid parent or crypto_key_id")
	}
	ck := req.GetCryptoKey()
	tmpl := &kmspb.CryptoKeyVersionTemplate{
		ProtectionLevel: ck.GetVersionTemplate().GetProtectionLevel(),
		Algorithm:       ck.GetVersionTemplate().GetAlgorithm(),
	}
	if tmpl.ProtectionLevel == kmspb.ProtectionLevel_PROTECTION_LEVEL_UNSPECIFIED {
		tmpl.ProtectionLevel = kmspb.ProtectionLevel_SOFTWARE
	}
	if tmpl.ProtectionLevel != kmspb.ProtectionLevel_SOFTWARE && tmpl.ProtectionLevel != kmspb.ProtectionLevel_HSM {
		return nil, status.Errorf(codes.InvalidArgument, "protection level %v not supported", tmpl.ProtectionLevel)
	}
	switch ck.GetPurpose() {
	case kmspb.CryptoKey_ASYMMETRIC_SIGN:
		if !signAlgs[tmpl.Algorithm] {
			return nil, status.Errorf(codes.InvalidArgument, "algorithm %v not supported for ASYMMETRIC_SIGN", tmpl.Algorithm)
		}
	case kmspb.CryptoKey_ENCRYPT_DECRYPT:
		if tmpl.Algorithm == kmspb.CryptoKeyVersion_CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED {
			tmpl.Algorithm = kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION
		}
		if tmpl.Algorithm != kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION {
			return nil, status.Errorf(codes.InvalidArgument, "algorithm %v not supported for ENCRYPT_DECRYPT", tmpl.Algorithm)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "purpose %v not supported", ck.GetPurpose())
	}
	for k, v := range ck.GetLabels() {
		if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
			return nil, status.Errorf(codes.InvalidArgument, "invalid label %q=%q", k, v)
		}
	}
	name := req.GetParent() + "/cryptoKeys/" + req.GetCryptoKeyId()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rings[req.GetParent()]; !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", req.GetParent())
	}
	if _, ok := s.keys[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "%s already exists", name)
	}
	k := &cryptoKey{name: name, purpose: ck.GetPurpose(), template: tmpl, labels: map[string]string{}, created: time.Now()}
	for l, v := range ck.GetLabels() {
		k.labels[l] = v
	}
	if !req.GetSkipInitialVersionCreation() {
		if _, err := k.addVersion(); err != nil {
			return nil, err
		}
		if k.purpose == kmspb.CryptoKey_ENCRYPT_DECRYPT {
			k.primary = 1
		}
	}
	s.keys[name] = k
	return k.proto(), nil
}

func (k *cryptoKey) addVersion() (*version, error) {
	v := &version{
		name:    fmt.Sprintf("%s/cryptoKeyVersions/%d", k.name, len(k.versions)+1),
		alg:     k.template.Algorithm,
		level:   k.template.ProtectionLevel,
		state:   kmspb.CryptoKeyVersion_ENABLED,
		created: time.Now(),
	}
	var err error
	switch v.alg {
	case kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256:
		v.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:
		v.ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case kmspb.CryptoKeyVersion_RSA_SIGN_PKCS1_2048_SHA256, kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256:
		v.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	case kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION:
		key := make([]byte, 32)
		rand.Read(key)
		var block cipher.Block
		if block, err = aes.NewCipher(key); err == nil {
			v.aead, err = cipher.NewGCM(block)
		}
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "generate key: %v", err)
	}
	k.versions = append(k.versions, v)
	return v, nil
}

func (k *cryptoKey) proto() *kmspb.CryptoKey {
	p := &kmspb.CryptoKey{
		Name:            k.name,
		Purpose:         k.purpose,
		CreateTime:      timestamppb.New(k.created),
		VersionTemplate: proto.Clone(k.template).(*kmspb.CryptoKeyVersionTemplate),
		Labels:          map[string]string{},
	}
	for l, v := range k.labels {
		p.Labels[l] = v
	}
	if k.primary > 0 {
		p.Primary = k.versions[k.primary-1].proto()
	}
	return p
}

func (v *version) proto() *kmspb.CryptoKeyVersion {
	p := &kmspb.CryptoKeyVersion{
		Name:            v.name,
		State:           v.state,
		ProtectionLevel: v.level,
		Algorithm:       v.alg,
		CreateTime:      timestamppb.New(v.created),
		GenerateTime:    timestamppb.New(v.created),
	}
	if !v.destroyAt.IsZero() {
		p.DestroyTime = timestamppb.New(v.destroyAt)
	}
	return p
}

// lookupKey returns the crypto key called name. s.mu must be held.
func (s *Server) lookupKey(name string) (*cryptoKey, error) {
	if !splitName(name, 4) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid crypto key name %q", name)
	}
	k, ok := s.keys[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "%s not found", name)
	}
	return k, nil
}

// lookupVersion returns the version called name and its key. s.mu must be held.
func (s *Server) lookupVersion(name string) (*cryptoKey, *version, error) {
	if !splitName(name, 5) {
		return nil, nil, status.Errorf(codes.InvalidArgument, "invalid crypto key version name %q", name)
	}
	i := strings.LastIndex(name, "/cryptoKeyVersions/")
	k, err := s.lookupKey(name[:i])
	if err != nil {
		return nil, nil, err
	}
	id, err := strconv.Atoi(name[i+len("/cryptoKeyVersions/"):])
	if err != nil || id < 1 || id > len(k.versions) {
		return nil, nil, status.Errorf(codes.NotFound, "%s not found", name)
	}
	return k, k.versions[id-1], nil
}

func (v *version) usable() error {
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return status.Errorf(codes.FailedPrecondition, "%s is not enabled, current state is: %v.", v.name, v.state)
	}
	return nil
}

func (s *Server) GetCryptoKey(_ context.Context, req *kmspb.GetCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookupKey(req.GetName())
	if err != nil {
		return nil, err
	}
	return k.proto(), nil
}

func (s *Server) GetCryptoKeyVersion(_ context.Context, req *kmspb.GetCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	p := v.proto()
	if s.pending > 0 {
		s.pending--
		p.State = kmspb.CryptoKeyVersion_PENDING_GENERATION
	}
	return p, nil
}

func (s *Server) CreateCryptoKeyVersion(_ context.Context, req *kmspb.CreateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookupKey(req.GetParent())
	if err != nil {
		return nil, err
	}
	v, err := k.addVersion()
	if err != nil {
		return nil, err
	}
	return v.proto(), nil
}

func (s *Server) UpdateCryptoKeyPrimaryVersion(_ context.Context, req *kmspb.UpdateCryptoKeyPrimaryVersionRequest) (*kmspb.CryptoKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookupKey(req.GetName())
	if err != nil {
		return nil, err
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, status.Errorf(codes.FailedPrecondition, "%s has no primary version", k.name)
	}
	_, v, err := s.lookupVersion(k.name + "/cryptoKeyVersions/" + req.GetCryptoKeyVersionId())
	if err != nil {
		return nil, err
	}
	if err := v.usable(); err != nil {
		return nil, err
	}
	k.primary, _ = strconv.Atoi(req.GetCryptoKeyVersionId())
	return k.proto(), nil
}

func (s *Server) UpdateCryptoKeyVersion(_ context.Context, req *kmspb.UpdateCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	if paths := req.GetUpdateMask().GetPaths(); len(paths) != 1 || paths[0] != "state" {
		return nil, status.Error(codes.InvalidArgument, "only update_mask \"state\" is supported")
	}
	want := req.GetCryptoKeyVersion().GetState()
	if want != kmspb.CryptoKeyVersion_ENABLED && want != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.InvalidArgument, "state %v cannot be set", want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.lookupVersion(req.GetCryptoKeyVersion().GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is in state %v", v.name, v.state)
	}
	v.state = want
	return v.proto(), nil
}

func (s *Server) DestroyCryptoKeyVersion(_ context.Context, req *kmspb.DestroyCryptoKeyVersionRequest) (*kmspb.CryptoKeyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED && v.state != kmspb.CryptoKeyVersion_DISABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is in state %v", v.name, v.state)
	}
	v.state = kmspb.CryptoKeyVersion_DESTROY_SCHEDULED
	v.destroyAt = time.Now().Add(24 * time.Hour)
	return v.proto(), nil
}

func (s *Server) GetPublicKey(_ context.Context, req *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	if f := req.GetPublicKeyFormat(); f != kmspb.PublicKey_PUBLIC_KEY_FORMAT_UNSPECIFIED && f != kmspb.PublicKey_PEM {
		return nil, status.Errorf(codes.InvalidArgument, "public key format %v not supported", f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, v, err := s.lookupVersion(req.GetName())
	if err != nil {
		return nil, err
	}
	if k.purpose != kmspb.CryptoKey_ASYMMETRIC_SIGN {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not an asymmetric key", k.name)
	}
	if err := v.usable(); err != nil {
		return nil, err
	}
	var pub any
	if v.ecKey != nil {
		pub = &v.ecKey.PublicKey
	} else {
		pub = &v.rsaKey.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "marshal public key: %v", err)
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return &kmspb.PublicKey{
		Pem:             p,
		PemCrc32C:       wrapperspb.Int64(CRC32C([]byte(p))),
		Algorithm:       v.alg,
		Name:            v.name,
		ProtectionLevel: v.level,
	}, nil
}

func (s *Server) AsymmetricSign(_ context.Context, req *kmspb.AsymmetricSignRequest) (*kmspb.AsymmetricSignResponse, error) {
	s.mu.Lock()
	k, v, err := s.lookupVersion(req.GetName())
	if err == nil && k.purpose != kmspb.CryptoKey_ASYMMETRIC_SIGN {
		err = status.Errorf(codes.FailedPrecondition, "%s is not an asymmetric signing key", k.name)
	}
	if err == nil {
		err = v.usable()
	}
	bad := s.faults.BadSignature
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var digest []byte
	switch v.alg {
	case kmspb.CryptoKeyVersion_EC_SIGN_P384_SHA384:
		digest = req.GetDigest().GetSha384()
	default:
		digest = req.GetDigest().GetSha256()
	}
	if len(digest) == 0 || len(req.GetData()) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%v needs the digest field of its hash", v.alg)
	}
	if c := req.GetDigestCrc32C(); c != nil && c.GetValue() != CRC32C(digest) {
		return nil, status.Error(codes.InvalidArgument, "The checksum in field digest_crc32c did not match the data in field digest.")
	}
	if bad {
		digest = append([]byte(nil), digest...)
		digest[0] ^= 1
	}
	var sig []byte
	switch {
	case v.ecKey != nil:
		sig, err = ecdsa.SignASN1(rand.Reader, v.ecKey, digest)
	case v.alg == kmspb.CryptoKeyVersion_RSA_SIGN_PSS_2048_SHA256:
		sig, err = rsa.SignPSS(rand.Reader, v.rsaKey, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		sig, err = rsa.SignPKCS1v15(rand.Reader, v.rsaKey, crypto.SHA256, digest)
	}
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "sign: %v", err)
	}
	return &kmspb.AsymmetricSignResponse{
		Signature:            sig,
		SignatureCrc32C:      wrapperspb.Int64(CRC32C(sig)),
		VerifiedDigestCrc32C: req.GetDigestCrc32C() != nil,
		Name:                 v.name,
		ProtectionLevel:      v.level,
	}, nil
}

func checkCRC(field string, data []byte, c *wrapperspb.Int64Value) error {
	if c != nil && c.GetValue() != CRC32C(data) {
		return status.Errorf(codes.InvalidArgument, "The checksum in field %s_crc32c did not match the data in field %s.", field, field)
	}
	return nil
}

// cipherHeader is format(1) || version id(4): the fake's ciphertext is
// header || nonce(12) || AES-256-GCM(plaintext, aad = header || aad).
const cipherHeader = 5

func (s *Server) Encrypt(_ context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	if len(req.GetPlaintext()) > MaxPayload || len(req.GetAdditionalAuthenticatedData()) > MaxPayload {
		return nil, status.Errorf(codes.InvalidArgument, "plaintext and additional_authenticated_data are limited to %d bytes", MaxPayload)
	}
	if err := checkCRC("plaintext", req.GetPlaintext(), req.GetPlaintextCrc32C()); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.GetName()
	if splitName(name, 4) {
		k, err := s.lookupKey(name)
		if err != nil {
			return nil, err
		}
		if k.primary == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "%s has no primary version", name)
		}
		name = k.versions[k.primary-1].name
	}
	k, v, err := s.lookupVersion(name)
	if err != nil {
		return nil, err
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not an ENCRYPT_DECRYPT key", k.name)
	}
	if err := v.usable(); err != nil {
		return nil, err
	}
	id, _ := strconv.Atoi(v.name[strings.LastIndex(v.name, "/")+1:])
	out := make([]byte, cipherHeader+v.aead.NonceSize(), cipherHeader+v.aead.NonceSize()+len(req.GetPlaintext())+v.aead.Overhead())
	out[0] = 1
	binary.BigEndian.PutUint32(out[1:cipherHeader], uint32(id))
	rand.Read(out[cipherHeader:])
	ad := append(append([]byte(nil), out[:cipherHeader]...), req.GetAdditionalAuthenticatedData()...)
	out = v.aead.Seal(out, out[cipherHeader:], req.GetPlaintext(), ad)
	return &kmspb.EncryptResponse{
		Name:                    v.name,
		Ciphertext:              out,
		CiphertextCrc32C:        wrapperspb.Int64(CRC32C(out)),
		VerifiedPlaintextCrc32C: req.GetPlaintextCrc32C() != nil,
		VerifiedAdditionalAuthenticatedDataCrc32C: req.GetAdditionalAuthenticatedDataCrc32C() != nil,
		ProtectionLevel: v.level,
	}, nil
}

func (s *Server) Decrypt(_ context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	ct := req.GetCiphertext()
	if err := checkCRC("ciphertext", ct, req.GetCiphertextCrc32C()); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookupKey(req.GetName())
	if err != nil {
		return nil, err
	}
	if k.purpose != kmspb.CryptoKey_ENCRYPT_DECRYPT {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not an ENCRYPT_DECRYPT key", k.name)
	}
	invalid := status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
	if len(ct) < cipherHeader+12+16 || ct[0] != 1 {
		return nil, invalid
	}
	id := int(binary.BigEndian.Uint32(ct[1:cipherHeader]))
	if id < 1 || id > len(k.versions) {
		return nil, invalid
	}
	v := k.versions[id-1]
	if err := v.usable(); err != nil {
		return nil, err
	}
	ns := v.aead.NonceSize()
	ad := append(append([]byte(nil), ct[:cipherHeader]...), req.GetAdditionalAuthenticatedData()...)
	pt, err := v.aead.Open(nil, ct[cipherHeader:cipherHeader+ns], ct[cipherHeader+ns:], ad)
	if err != nil {
		return nil, invalid
	}
	return &kmspb.DecryptResponse{
		Plaintext:       pt,
		PlaintextCrc32C: wrapperspb.Int64(CRC32C(pt)),
		UsedPrimary:     id == k.primary,
		ProtectionLevel: v.level,
	}, nil
}
