package harness

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ModelServer is a local stand-in for the model providers, speaking each
// one's wire format on one loopback HTTP port:
//
//   - OpenAI chat completions, POST /v1/chat/completions (the openai
//     provider, Bearer key; and Portkey's gateway, its x-portkey-api-key and
//     x-portkey-virtual-key headers), tool calls in message.tool_calls;
//   - Anthropic Messages, POST /v1/messages (x-api-key or a Bearer key,
//     anthropic-version),
//     tool_use and tool_result content blocks;
//   - Bedrock Converse, POST /model/{modelId}/converse, SigV4-signed for
//     service bedrock (the signature recomputed here from the account's
//     keys), toolUse and toolResult content blocks. Give its URL to the SDK
//     as AWS_ENDPOINT_URL_BEDROCK_RUNTIME.
//
// What it answers comes from a script (Answer), after any queued faults
// (Fail). Methods are safe for concurrent use.
type ModelServer struct {
	URL string

	// Keys the server accepts; empty: that API refuses every request.
	OpenAIKey, AnthropicKey, PortkeyKey, PortkeyVirtualKey string
	// Account signs Bedrock requests (nil: Bedrock refuses every request).
	Account *AWSAccount

	mu     sync.Mutex
	answer func(ModelCall) ModelReply
	faults []ModelReply
	calls  []ModelCall
}

// ModelCall is one request the server received, reduced to what tests
// look at.
type ModelCall struct {
	API    string // openai, portkey, anthropic, bedrock
	Model  string
	System string
	// Text is every user text and tool result of the conversation, in
	// order, one per line: what the model was shown.
	Text        string
	Tools       []string
	ToolResults []string
	// Turns is how many assistant turns the conversation already has.
	Turns       int
	Temperature *float64
	// Header is the request's headers (with its credentials).
	Header http.Header
	At     time.Time
}

// ModelReply is what the server answers to one request.
type ModelReply struct {
	// Status, when not 0 or 200, is an error in the API's format.
	Status int
	// Delay is waited before answering (a slow provider).
	Delay time.Duration
	// Malformed answers 200 with a body that is not JSON.
	Malformed bool
	// Text is the model's text; Tool and Input a tool call.
	Text  string
	Tool  string
	Input any
}

// StartModelServer starts a ModelServer with fresh keys for every API; it
// stops in cleanup.
func StartModelServer(t testing.TB, account *AWSAccount) *ModelServer {
	t.Helper()
	s := &ModelServer{
		OpenAIKey: "sk-test-" + randomHex(12), AnthropicKey: "sk-ant-test-" + randomHex(12),
		PortkeyKey: "pk-test-" + randomHex(12), PortkeyVirtualKey: "vk-bedrock-" + randomHex(6),
		Account: account,
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Answer sets the script: the reply to every request no fault is queued for.
func (s *ModelServer) Answer(f func(ModelCall) ModelReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

// Fail queues replies given, in order, before the script answers again.
func (s *ModelServer) Fail(replies ...ModelReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, replies...)
}

// Calls returns the requests received so far.
func (s *ModelServer) Calls() []ModelCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ModelCall(nil), s.calls...)
}

// Reset forgets the requests received so far and the queued faults.
func (s *ModelServer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.faults = nil, nil
}

func (s *ModelServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var call ModelCall
	var api string
	switch {
	case r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/chat/completions":
		api = "openai"
		if r.Header.Get("x-portkey-api-key") != "" {
			api = "portkey"
		}
		if !s.authorised(api, r) {
			writeAPIError(w, api, http.StatusUnauthorized, "invalid API key")
			return
		}
		call, err = parseOpenAI(body)
	case r.URL.Path == "/v1/messages":
		api = "anthropic"
		// The key comes as x-api-key, or as a Bearer token (what the v2 Go
		// SDK sends); the version header is required either way.
		key := r.Header.Get("x-api-key")
		if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && key == "" {
			key = b
		}
		if key != s.AnthropicKey || s.AnthropicKey == "" || r.Header.Get("anthropic-version") == "" {
			writeAPIError(w, api, http.StatusUnauthorized, "invalid x-api-key")
			return
		}
		call, err = parseAnthropic(body)
	case strings.HasPrefix(r.URL.Path, "/model/") && strings.HasSuffix(r.URL.Path, "/converse"):
		api = "bedrock"
		if s.Account == nil {
			writeAPIError(w, api, http.StatusForbidden, "no account")
			return
		}
		if err := verifySigV4(r, body, "bedrock", s.Account); err != nil {
			writeAPIError(w, api, http.StatusForbidden, err.Error())
			return
		}
		call, err = parseBedrock(body)
		call.Model, _ = url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/model/"), "/converse"))
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		writeAPIError(w, api, http.StatusBadRequest, "malformed request: "+err.Error())
		return
	}
	call.API, call.Header, call.At = api, r.Header.Clone(), time.Now()

	s.mu.Lock()
	s.calls = append(s.calls, call)
	var reply ModelReply
	switch {
	case len(s.faults) > 0:
		reply, s.faults = s.faults[0], s.faults[1:]
	case s.answer != nil:
		answer := s.answer
		s.mu.Unlock()
		reply = answer(call)
		s.mu.Lock()
	default:
		reply = ModelReply{Status: http.StatusInternalServerError}
	}
	s.mu.Unlock()

	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeAPIError(w, api, reply.Status, http.StatusText(reply.Status))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if reply.Malformed {
		_, _ = io.WriteString(w, `{"choices": [ {"message": `)
		return
	}
	in, out := int64(len(body)/4), int64(len(reply.Text)/4+20)
	_ = json.NewEncoder(w).Encode(replyBody(api, call.Model, reply, in, out))
}

func (s *ModelServer) authorised(api string, r *http.Request) bool {
	if api == "portkey" {
		return s.PortkeyKey != "" && r.Header.Get("x-portkey-api-key") == s.PortkeyKey &&
			r.Header.Get("x-portkey-virtual-key") == s.PortkeyVirtualKey
	}
	return s.OpenAIKey != "" && r.Header.Get("Authorization") == "Bearer "+s.OpenAIKey
}

// replyBody is reply in the wire format of api.
func replyBody(api, model string, reply ModelReply, in, out int64) any {
	id := randomHex(8)
	input := reply.Input
	if input == nil {
		input = map[string]any{}
	}
	switch api {
	case "anthropic":
		var content []map[string]any
		if reply.Text != "" {
			content = append(content, map[string]any{"type": "text", "text": reply.Text})
		}
		stop := "end_turn"
		if reply.Tool != "" {
			content = append(content, map[string]any{"type": "tool_use", "id": "toolu_" + id, "name": reply.Tool, "input": input})
			stop = "tool_use"
		}
		return map[string]any{"id": "msg_" + id, "type": "message", "role": "assistant", "model": model,
			"content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": in, "output_tokens": out}}
	case "bedrock":
		var content []map[string]any
		if reply.Text != "" {
			content = append(content, map[string]any{"text": reply.Text})
		}
		stop := "end_turn"
		if reply.Tool != "" {
			content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": "tooluse_" + id, "name": reply.Tool, "input": input}})
			stop = "tool_use"
		}
		return map[string]any{"output": map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
			"stopReason": stop, "usage": map[string]any{"inputTokens": in, "outputTokens": out, "totalTokens": in + out},
			"metrics": map[string]any{"latencyMs": 1}}
	default:
		msg := map[string]any{"role": "assistant", "content": nil}
		if reply.Text != "" {
			msg["content"] = reply.Text
		}
		finish := "stop"
		if reply.Tool != "" {
			args, _ := json.Marshal(input)
			msg["tool_calls"] = []map[string]any{{"id": "call_" + id, "type": "function",
				"function": map[string]any{"name": reply.Tool, "arguments": string(args)}}}
			finish = "tool_calls"
		}
		return map[string]any{"id": "chatcmpl-" + id, "object": "chat.completion", "created": time.Now().Unix(), "model": model,
			"choices": []map[string]any{{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}}
	}
}

// writeAPIError answers status in api's error format.
func writeAPIError(w http.ResponseWriter, api string, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	switch api {
	case "anthropic":
		typ := map[int]string{401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}[status]
		if typ == "" {
			typ = "api_error"
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
	case "bedrock":
		typ := map[int]string{403: "AccessDeniedException", 429: "ThrottlingException", 400: "ValidationException"}[status]
		if typ == "" {
			typ = "InternalServerException"
		}
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"message": msg})
	default:
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "error", "code": fmt.Sprint(status)}})
	}
}

// flexText reads a content field that is a string or a list of parts with
// "text" (OpenAI, Anthropic tool results).
func flexText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var out []string
	for _, p := range parts {
		out = append(out, p.Text)
	}
	return strings.Join(out, "\n")
}

func parseOpenAI(body []byte) (ModelCall, error) {
	var req struct {
		Model       string   `json:"model"`
		Temperature *float64 `json:"temperature"`
		Messages    []struct {
			Role      string            `json:"role"`
			Content   json.RawMessage   `json:"content"`
			ToolCalls []json.RawMessage `json:"tool_calls"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return ModelCall{}, err
	}
	c := ModelCall{Model: req.Model, Temperature: req.Temperature}
	var text []string
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			c.System = flexText(m.Content)
		case "assistant":
			c.Turns++
		case "tool":
			r := flexText(m.Content)
			c.ToolResults = append(c.ToolResults, r)
			text = append(text, r)
		default:
			text = append(text, flexText(m.Content))
		}
	}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, t.Function.Name)
	}
	c.Text = strings.Join(text, "\n")
	return c, nil
}

func parseAnthropic(body []byte) (ModelCall, error) {
	var req struct {
		Model       string          `json:"model"`
		Temperature *float64        `json:"temperature"`
		System      json.RawMessage `json:"system"`
		Messages    []struct {
			Role    string `json:"role"`
			Content []struct {
				Type    string          `json:"type"`
				Text    string          `json:"text"`
				Content json.RawMessage `json:"content"`
			} `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		MaxTokens int `json:"max_tokens"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return ModelCall{}, err
	}
	if req.MaxTokens <= 0 {
		return ModelCall{}, fmt.Errorf("max_tokens: field required")
	}
	c := ModelCall{Model: req.Model, Temperature: req.Temperature, System: flexText(req.System)}
	var text []string
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			c.Turns++
			continue
		}
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				text = append(text, b.Text)
			case "tool_result":
				r := flexText(b.Content)
				c.ToolResults = append(c.ToolResults, r)
				text = append(text, r)
			}
		}
	}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, t.Name)
	}
	c.Text = strings.Join(text, "\n")
	return c, nil
}

func parseBedrock(body []byte) (ModelCall, error) {
	var req struct {
		System []struct {
			Text string `json:"text"`
		} `json:"system"`
		InferenceConfig struct {
			Temperature *float64 `json:"temperature"`
		} `json:"inferenceConfig"`
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Text       *string `json:"text"`
				ToolResult *struct {
					Content []struct {
						Text string `json:"text"`
					} `json:"content"`
				} `json:"toolResult"`
			} `json:"content"`
		} `json:"messages"`
		ToolConfig struct {
			Tools []struct {
				ToolSpec struct {
					Name string `json:"name"`
				} `json:"toolSpec"`
			} `json:"tools"`
		} `json:"toolConfig"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return ModelCall{}, err
	}
	c := ModelCall{Temperature: req.InferenceConfig.Temperature}
	for _, s := range req.System {
		c.System += s.Text
	}
	var text []string
	for _, m := range req.Messages {
		if m.Role == "assistant" {
			c.Turns++
			continue
		}
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				text = append(text, *b.Text)
			case b.ToolResult != nil:
				var parts []string
				for _, p := range b.ToolResult.Content {
					parts = append(parts, p.Text)
				}
				r := strings.Join(parts, "\n")
				c.ToolResults = append(c.ToolResults, r)
				text = append(text, r)
			}
		}
	}
	for _, t := range req.ToolConfig.Tools {
		c.Tools = append(c.Tools, t.ToolSpec.Name)
	}
	c.Text = strings.Join(text, "\n")
	return c, nil
}

// verifySigV4 checks the SigV4 Authorization header of r (with body) for
// service in the account's region, recomputing the signature from the
// SigV4 specification: canonical request (each path segment escaped
// again, as for every service but S3), string to sign, signing key.
func verifySigV4(r *http.Request, body []byte, service string, a *AWSAccount) error {
	h := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("no SigV4 Authorization header")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[2] != a.Region || scope[3] != service || scope[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q, want <key>/<date>/%s/%s/aws4_request", fields["Credential"], a.Region, service)
	}
	key, ok := a.Lookup(scope[0])
	if !ok {
		return fmt.Errorf("the security token included in the request is invalid")
	}
	if !key.Expires.IsZero() && time.Now().After(key.Expires) {
		return fmt.Errorf("the security token included in the request is expired")
	}
	if key.Token != "" && r.Header.Get("X-Amz-Security-Token") != key.Token {
		return fmt.Errorf("the security token does not match the key")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, scope[1]) {
		return fmt.Errorf("X-Amz-Date %q does not match the scope", amzDate)
	}
	if d := time.Since(signedAt); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature expired: signed at %s", amzDate)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) || !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return fmt.Errorf("signed headers %q", fields["SignedHeaders"])
	}
	var canon strings.Builder
	for _, name := range signed {
		v := r.Header.Values(name)
		if name == "host" {
			v = []string{r.Host}
		}
		if name == "content-length" {
			v = []string{fmt.Sprint(len(body))}
		}
		for i := range v {
			v[i] = strings.Join(strings.Fields(v[i]), " ")
		}
		canon.WriteString(name + ":" + strings.Join(v, ",") + "\n")
	}
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i, s := range segs {
		segs[i] = awsEscape(s)
	}
	payload := hex.EncodeToString(sha256Sum(string(body)))
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != "" && got != payload {
		return fmt.Errorf("the payload hash does not match the body")
	}
	creq := strings.Join([]string{r.Method, strings.Join(segs, "/"), canonicalQuery(r.URL.Query()),
		canon.String(), fields["SignedHeaders"], payload}, "\n")
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, strings.Join(scope[1:], "/"),
		hex.EncodeToString(sha256Sum(creq))}, "\n")
	k := hmacSum([]byte("AWS4"+key.Secret), scope[1])
	k = hmacSum(k, scope[2])
	k = hmacSum(k, scope[3])
	k = hmacSum(k, "aws4_request")
	if want := hex.EncodeToString(hmacSum(k, sts)); !bytes.Equal([]byte(want), []byte(fields["Signature"])) {
		return fmt.Errorf("the request signature we calculated does not match the signature you provided")
	}
	return nil
}
