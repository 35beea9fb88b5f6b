package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// messages speaks Anthropic's Messages API.
type messages struct {
	model  string
	client anthropic.Client
}

// newAnthropic is the anthropic provider. Nothing is read from the
// environment behind the configuration's back (the SDK would otherwise
// pick up ANTHROPIC_* credentials and headers of its own).
func newAnthropic(baseURL, apiKey, model string, hc *http.Client) *messages {
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithMaxRetries(0),
		option.WithAPIKey(apiKey),
		// The SDK has no field for it; the API takes it (0: the same
		// statement gets the same answer as far as the model allows).
		option.WithJSONSet("temperature", 0),
	}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(baseURL))
	}
	if hc != nil {
		opts = append(opts, option.WithHTTPClient(hc))
	}
	return &messages{model: model, client: anthropic.NewClient(opts...)}
}

func (m *messages) Name() string  { return "anthropic" }
func (m *messages) Model() string { return m.model }

func (m *messages) Complete(ctx context.Context, req Request) (Response, error) {
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 1024
	}
	params := anthropic.MessageNewParams{Model: anthropic.Model(m.model), MaxTokens: maxTokens}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	for _, msg := range req.Messages {
		var blocks []anthropic.ContentBlockParamUnion
		for _, r := range msg.Results {
			blocks = append(blocks, anthropic.NewToolResultBlock(r.CallID, r.Content, r.IsError))
		}
		if msg.Text != "" {
			blocks = append(blocks, anthropic.NewTextBlock(msg.Text))
		}
		for _, c := range msg.Calls {
			blocks = append(blocks, anthropic.NewToolUseBlock(c.ID, c.Input, c.Name))
		}
		if msg.Role == Assistant {
			params.Messages = append(params.Messages, anthropic.NewAssistantMessage(blocks...))
		} else {
			params.Messages = append(params.Messages, anthropic.NewUserMessage(blocks...))
		}
	}
	for _, t := range req.Tools {
		schema := anthropic.ToolInputSchemaParam{Properties: t.Schema["properties"]}
		if req, ok := t.Schema["required"].([]string); ok {
			schema.Required = req
		}
		tool := anthropic.ToolUnionParamOfTool(schema, t.Name)
		tool.OfTool.Description = anthropic.String(t.Description)
		params.Tools = append(params.Tools, tool)
	}
	if len(req.Tools) > 0 {
		params.ToolChoice = anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}
	}
	resp, err := m.client.Messages.New(ctx, params)
	if err != nil {
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			return Response{}, failure("anthropic", apiErr.StatusCode, err)
		}
		return Response{}, failure("anthropic", 0, err)
	}
	out := Response{InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens}
	for _, b := range resp.Content {
		switch b.Type {
		case "text":
			out.Text += b.Text
		case "tool_use":
			input := b.Input
			if len(input) == 0 {
				input = json.RawMessage("{}")
			}
			out.Calls = append(out.Calls, Call{ID: b.ID, Name: b.Name, Input: input})
		}
	}
	return out, nil
}
