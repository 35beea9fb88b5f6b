package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ToolFunc runs a tool for the model. Tools only read; what they return is
// shown to the model as data. An error is shown to the model too (as a
// failed tool result), so it can try another way.
type ToolFunc func(ctx context.Context, input json.RawMessage) (string, error)

// Task is one question for the agent: the system prompt, the user's
// message, the read-only tools, and the answer tool, whose input is the
// structured answer Validate accepts.
type Task struct {
	System   string
	Prompt   string
	Tools    []Tool
	Funcs    map[string]ToolFunc
	Answer   Tool
	Validate func(answer json.RawMessage) error
}

// Usage is what a Run cost.
type Usage struct {
	Requests     int
	InputTokens  int64
	OutputTokens int64
}

// Agent runs the tool loop on a Client, bounded in steps and tokens.
type Agent struct {
	Client *Client
	// MaxSteps bounds the model's turns (default 6).
	MaxSteps int
	// MaxTokens bounds each answer (default 1024).
	MaxTokens int64
	// TokenBudget bounds a Run's input and output tokens together
	// (default 32,000): the loop ends when it is spent.
	TokenBudget int64
}

// ErrNoAnswer is a Run that ended without a valid answer.
var ErrNoAnswer = errors.New("llm: no valid answer")

// maxToolOutput bounds what one tool result shows the model.
const maxToolOutput = 16 << 10

// Run asks the model until it calls the answer tool with an input Validate
// accepts; an invalid answer is sent back once with the reason, a second
// one ends the run (ErrNoAnswer).
func (a *Agent) Run(ctx context.Context, t Task) (json.RawMessage, Usage, error) {
	steps, maxTokens, budget := a.MaxSteps, a.MaxTokens, a.TokenBudget
	if steps <= 0 {
		steps = 6
	}
	if maxTokens <= 0 {
		maxTokens = 1024
	}
	if budget <= 0 {
		budget = 32_000
	}
	tools := append(append([]Tool(nil), t.Tools...), t.Answer)
	msgs := []Message{{Role: User, Text: t.Prompt}}
	var use Usage
	invalid := 0
	for step := 0; step < steps; step++ {
		resp, err := a.Client.Complete(ctx, Request{System: t.System, Messages: msgs, Tools: tools, MaxTokens: maxTokens})
		if err != nil {
			return nil, use, err
		}
		use.Requests++
		use.InputTokens += resp.InputTokens
		use.OutputTokens += resp.OutputTokens
		msgs = append(msgs, Message{Role: Assistant, Text: resp.Text, Calls: resp.Calls})
		if len(resp.Calls) == 0 {
			invalid++
			if invalid > 1 {
				return nil, use, fmt.Errorf("%w: the model answered in text, not with %s", ErrNoAnswer, t.Answer.Name)
			}
			msgs = append(msgs, Message{Role: User, Text: "Answer by calling the " + t.Answer.Name + " tool."})
			continue
		}
		var results []Result
		for _, call := range resp.Calls {
			if call.Name == t.Answer.Name {
				err := validJSONObject(call.Input)
				if err == nil && t.Validate != nil {
					err = t.Validate(call.Input)
				}
				if err == nil {
					return call.Input, use, nil
				}
				invalid++
				if invalid > 1 {
					return nil, use, fmt.Errorf("%w: %v", ErrNoAnswer, err)
				}
				results = append(results, Result{CallID: call.ID, IsError: true, Content: "invalid answer: " + err.Error() + "; call " + t.Answer.Name + " again with a valid answer"})
				continue
			}
			f, ok := t.Funcs[call.Name]
			if !ok {
				results = append(results, Result{CallID: call.ID, IsError: true, Content: "no tool named " + call.Name})
				continue
			}
			out, err := f(ctx, call.Input)
			if err != nil {
				results = append(results, Result{CallID: call.ID, IsError: true, Content: err.Error()})
				continue
			}
			if len(out) > maxToolOutput {
				out = out[:maxToolOutput] + "\n[cut: the output was longer]"
			}
			results = append(results, Result{CallID: call.ID, Content: out})
		}
		msgs = append(msgs, Message{Role: User, Results: results})
		if use.InputTokens+use.OutputTokens >= budget {
			return nil, use, fmt.Errorf("%w: the token budget (%d) is spent", ErrNoAnswer, budget)
		}
	}
	return nil, use, fmt.Errorf("%w: no answer in %d steps", ErrNoAnswer, steps)
}

func validJSONObject(raw json.RawMessage) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return errors.New("the input is not a JSON object")
	}
	return nil
}
