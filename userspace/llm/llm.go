// Package llm asks a language model for a structured answer: the providers
// (Portkey's OpenAI-compatible gateway, Bedrock Converse, Anthropic
// Messages, any OpenAI-compatible endpoint) behind one Provider, a Client
// that bounds, retries and counts their requests behind a circuit breaker,
// and an Agent that runs the tool loop (read-only tools the caller gives,
// then one answer tool whose input is validated). The analysis and the
// masking config generator share it.
//
// Nothing secret leaves this package: errors carry the provider, the HTTP
// status and a short kind, never a request URL, header or body.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Role is who wrote a message.
type Role string

const (
	User      Role = "user"
	Assistant Role = "assistant"
)

// Message is one turn of a conversation: the user's text or tool results,
// or the model's text and tool calls.
type Message struct {
	Role    Role
	Text    string
	Calls   []Call   // the model's tool calls (Assistant)
	Results []Result // the answers to the previous turn's calls (User)
}

// Call is one tool call of the model.
type Call struct {
	ID    string
	Name  string
	Input json.RawMessage // a JSON object
}

// Result answers one Call.
type Result struct {
	CallID  string
	Content string
	IsError bool
}

// Tool is a tool the model may call: Schema is the JSON schema of its input
// (an object).
type Tool struct {
	Name        string
	Description string
	Schema      map[string]any
}

// Request is one request to a model. Providers send it at temperature 0
// and require a tool call (the agent's answers are tool calls).
type Request struct {
	System    string
	Messages  []Message
	Tools     []Tool
	MaxTokens int64
}

// Response is the model's turn.
type Response struct {
	Text         string
	Calls        []Call
	InputTokens  int64
	OutputTokens int64
}

// Provider sends a Request to one model.
type Provider interface {
	// Name is the provider's name (portkey, bedrock, anthropic, openai):
	// the metrics' provider label.
	Name() string
	// Model is the model asked.
	Model() string
	Complete(ctx context.Context, req Request) (Response, error)
}

// Error is a failed request: the provider, the HTTP status when there was
// one (0 for a transport failure or a time-out), and what went wrong in a
// few words. It never holds a URL, a header or a body: provider SDK errors
// may (Anthropic's names the request URL).
type Error struct {
	Provider string
	Status   int
	Kind     string // "429", "500", "timeout", "transport", "malformed response", ...
	err      error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: HTTP %d (%s)", e.Provider, e.Status, e.Kind)
	}
	return e.Provider + ": " + e.Kind
}

// Unwrap gives context errors only (the SDK error may hold the URL).
func (e *Error) Unwrap() error {
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled) {
		return e.err
	}
	return nil
}

// Retryable says whether the same request may succeed later: throttling,
// a server error, a time-out of one attempt or a broken connection.
func (e *Error) Retryable() bool {
	switch {
	case e.Status == 429 || e.Status == 408 || e.Status == 529:
		return true
	case e.Status >= 500:
		return true
	case e.Status == 0:
		return e.Kind == "transport" || e.Kind == "malformed response"
	}
	return false
}

// statusKind names an HTTP status for Error.Kind.
func statusKind(status int) string {
	switch {
	case status == 429:
		return "throttled"
	case status == 401 || status == 403:
		return "not authorised: check the API key"
	case status == 404:
		return "not found: check the model and the base URL"
	case status >= 500:
		return "server error"
	case status >= 400:
		return "request refused"
	}
	return "unexpected status"
}

// failure makes the Error of a request that failed with err and, when the
// provider answered, status.
func failure(provider string, status int, err error) *Error {
	e := &Error{Provider: provider, Status: status, err: err}
	switch {
	case status != 0:
		e.Kind = statusKind(status)
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = "timeout"
	case errors.Is(err, context.Canceled):
		e.Kind = "canceled"
	default:
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syn) || errors.As(err, &typ) {
			e.Kind = "malformed response"
		} else {
			e.Kind = "transport"
		}
	}
	return e
}
