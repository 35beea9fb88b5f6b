package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// DefaultPortkeyURL is Portkey's hosted gateway.
const DefaultPortkeyURL = "https://api.portkey.ai/v1"

// chatCompletions speaks OpenAI's chat-completions API: to OpenAI or any
// compatible server (openai), or to Portkey's gateway, which routes it to
// the model its virtual key names (portkey).
type chatCompletions struct {
	name   string
	model  string
	client openai.Client
}

// newOpenAI is the openai provider: baseURL (OPENAI_BASE_URL) with apiKey.
func newOpenAI(baseURL, apiKey, model string, hc *http.Client) *chatCompletions {
	opts := []option.RequestOption{option.WithMaxRetries(0), option.WithAPIKey(apiKey)}
	if baseURL != "" {
		opts = append(opts, option.WithBaseURL(baseURL))
	}
	if hc != nil {
		opts = append(opts, option.WithHTTPClient(hc))
	}
	if apiKey == "" {
		// A local model server wants none; do not send "Bearer ".
		opts = append(opts, option.WithHeaderDel("Authorization"))
	}
	return &chatCompletions{name: "openai", model: model, client: openai.NewClient(opts...)}
}

// newPortkey is the portkey provider: the gateway at baseURL with its API
// key and the virtual key of the provider account (Bedrock in the
// reference set-up), asking for model.
func newPortkey(baseURL, apiKey, virtualKey, model string, hc *http.Client) *chatCompletions {
	if baseURL == "" {
		baseURL = DefaultPortkeyURL
	}
	opts := []option.RequestOption{
		option.WithMaxRetries(0),
		option.WithBaseURL(baseURL),
		option.WithAPIKey(""),
		option.WithHeaderDel("Authorization"),
		option.WithHeader("x-portkey-api-key", apiKey),
	}
	if virtualKey != "" {
		opts = append(opts, option.WithHeader("x-portkey-virtual-key", virtualKey))
	}
	if hc != nil {
		opts = append(opts, option.WithHTTPClient(hc))
	}
	return &chatCompletions{name: "portkey", model: model, client: openai.NewClient(opts...)}
}

func (c *chatCompletions) Name() string  { return c.name }
func (c *chatCompletions) Model() string { return c.model }

func (c *chatCompletions) Complete(ctx context.Context, req Request) (Response, error) {
	params := openai.ChatCompletionNewParams{
		Model:       shared.ChatModel(c.model),
		Temperature: openai.Float(0),
	}
	if req.MaxTokens > 0 {
		params.MaxTokens = openai.Int(req.MaxTokens)
	}
	if req.System != "" {
		params.Messages = append(params.Messages, openai.SystemMessage(req.System))
	}
	for _, m := range req.Messages {
		params.Messages = append(params.Messages, openAIMessages(m)...)
	}
	for _, t := range req.Tools {
		params.Tools = append(params.Tools, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  shared.FunctionParameters(t.Schema),
		}))
	}
	if len(req.Tools) > 0 {
		params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	}
	resp, err := c.client.Chat.Completions.New(ctx, params)
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			return Response{}, failure(c.name, apiErr.StatusCode, err)
		}
		return Response{}, failure(c.name, 0, err)
	}
	if len(resp.Choices) == 0 {
		return Response{}, &Error{Provider: c.name, Kind: "malformed response"}
	}
	msg := resp.Choices[0].Message
	out := Response{Text: msg.Content, InputTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens}
	for _, tc := range msg.ToolCalls {
		if tc.Type != "function" {
			continue
		}
		args := strings.TrimSpace(tc.Function.Arguments)
		if args == "" {
			args = "{}"
		}
		out.Calls = append(out.Calls, Call{ID: tc.ID, Name: tc.Function.Name, Input: json.RawMessage(args)})
	}
	return out, nil
}

// openAIMessages is m as chat-completions messages: tool results are one
// "tool" message each.
func openAIMessages(m Message) []openai.ChatCompletionMessageParamUnion {
	switch m.Role {
	case Assistant:
		a := openai.ChatCompletionAssistantMessageParam{}
		if m.Text != "" {
			a.Content.OfString = openai.String(m.Text)
		}
		for _, c := range m.Calls {
			a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID:       c.ID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: c.Name, Arguments: string(c.Input)},
				},
			})
		}
		return []openai.ChatCompletionMessageParamUnion{{OfAssistant: &a}}
	default:
		var out []openai.ChatCompletionMessageParamUnion
		for _, r := range m.Results {
			content := r.Content
			if r.IsError {
				content = "error: " + content
			}
			out = append(out, openai.ToolMessage(content, r.CallID))
		}
		if m.Text != "" {
			out = append(out, openai.UserMessage(m.Text))
		}
		return out
	}
}
