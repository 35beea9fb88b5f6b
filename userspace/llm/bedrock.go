package llm

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// DefaultBedrockModel is the reference system's model: Claude Sonnet 4 by
// the EU cross-region inference profile.
const DefaultBedrockModel = "eu.anthropic.claude-sonnet-4-20250514-v1:0"

// converse speaks Bedrock's Converse API (SigV4 with the configuration's
// credentials; the endpoint from the SDK's resolution, which honours
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME).
type converse struct {
	model  string
	client *bedrockruntime.Client
}

// newBedrock is the bedrock provider. The Client retries, not the SDK.
func newBedrock(cfg aws.Config, model string) *converse {
	client := bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.Retryer = aws.NopRetryer{}
	})
	return &converse{model: model, client: client}
}

func (c *converse) Name() string  { return "bedrock" }
func (c *converse) Model() string { return c.model }

func (c *converse) Complete(ctx context.Context, req Request) (Response, error) {
	maxTokens := int32(1024)
	if req.MaxTokens > 0 && req.MaxTokens < 1<<20 {
		maxTokens = int32(req.MaxTokens)
	}
	in := &bedrockruntime.ConverseInput{
		ModelId:         aws.String(c.model),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens), Temperature: aws.Float32(0)},
	}
	if req.System != "" {
		in.System = []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: req.System}}
	}
	for _, m := range req.Messages {
		var blocks []types.ContentBlock
		for _, r := range m.Results {
			status := types.ToolResultStatusSuccess
			if r.IsError {
				status = types.ToolResultStatusError
			}
			blocks = append(blocks, &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
				ToolUseId: aws.String(r.CallID),
				Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: r.Content}},
				Status:    status,
			}})
		}
		if m.Text != "" {
			blocks = append(blocks, &types.ContentBlockMemberText{Value: m.Text})
		}
		for _, call := range m.Calls {
			var input any
			if err := json.Unmarshal(call.Input, &input); err != nil {
				input = map[string]any{}
			}
			blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
				ToolUseId: aws.String(call.ID), Name: aws.String(call.Name), Input: document.NewLazyDocument(input),
			}})
		}
		role := types.ConversationRoleUser
		if m.Role == Assistant {
			role = types.ConversationRoleAssistant
		}
		in.Messages = append(in.Messages, types.Message{Role: role, Content: blocks})
	}
	if len(req.Tools) > 0 {
		tc := &types.ToolConfiguration{ToolChoice: &types.ToolChoiceMemberAny{}}
		for _, t := range req.Tools {
			tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: types.ToolSpecification{
				Name:        aws.String(t.Name),
				Description: aws.String(t.Description),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(t.Schema)},
			}})
		}
		in.ToolConfig = tc
	}
	resp, err := c.client.Converse(ctx, in)
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			return Response{}, failure("bedrock", re.HTTPStatusCode(), err)
		}
		return Response{}, failure("bedrock", 0, err)
	}
	out := Response{}
	if resp.Usage != nil {
		out.InputTokens = int64(aws.ToInt32(resp.Usage.InputTokens))
		out.OutputTokens = int64(aws.ToInt32(resp.Usage.OutputTokens))
	}
	msg, ok := resp.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return Response{}, &Error{Provider: "bedrock", Kind: "malformed response"}
	}
	for _, b := range msg.Value.Content {
		switch b := b.(type) {
		case *types.ContentBlockMemberText:
			out.Text += b.Value
		case *types.ContentBlockMemberToolUse:
			input := json.RawMessage("{}")
			if b.Value.Input != nil {
				raw, err := b.Value.Input.MarshalSmithyDocument()
				if err != nil {
					return Response{}, &Error{Provider: "bedrock", Kind: "malformed response"}
				}
				input = raw
			}
			out.Calls = append(out.Calls, Call{ID: aws.ToString(b.Value.ToolUseId), Name: aws.ToString(b.Value.Name), Input: input})
		}
	}
	return out, nil
}
