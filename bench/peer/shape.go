package main

// peer_shape has the same schema and semantics as tests/support/tfplugtest.rs's
// `tfplugtest_shape`; tests/conformance.rs drives both through the same corpus of
// configurations and compares `terraform show -json` of plans and states. It stores nothing:
// the state is the plan with the computed values filled in (id = "shape-<name>",
// rule[*].uid = "uid-<port>").

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type shapeResource struct{}

func (r *shapeResource) Metadata(_ context.Context, _ resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = "peer_shape"
}

func (r *shapeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	// Prior values for existing objects; unknown in new nested items (as tfplug plans them).
	keep := []planmodifier.String{stringplanmodifier.UseNonNullStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A value of every shape, echoed into state.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{Required: true, MarkdownDescription: "Name; changing it replaces the shape.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"id":       schema.StringAttribute{Computed: true, MarkdownDescription: "`shape-<name>`.", PlanModifiers: keep},
			"note":     schema.StringAttribute{Optional: true, MarkdownDescription: "A note."},
			"amount":   schema.NumberAttribute{Optional: true, MarkdownDescription: "A number of any size or precision."},
			"tags":     schema.SetAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Tags."},
			"labels":   schema.MapAttribute{ElementType: types.StringType, Optional: true, MarkdownDescription: "Labels."},
			"anything": schema.DynamicAttribute{Optional: true, MarkdownDescription: "Any value."},
		},
		Blocks: map[string]schema.Block{
			"rule": schema.ListNestedBlock{
				MarkdownDescription: "A port rule.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"port":     schema.NumberAttribute{Required: true, MarkdownDescription: "Port number."},
					"protocol": schema.StringAttribute{Optional: true, MarkdownDescription: "Protocol name."},
					"uid":      schema.StringAttribute{Computed: true, MarkdownDescription: "`uid-<port>`.", PlanModifiers: keep},
				}},
			},
			"backend": schema.SetNestedBlock{
				MarkdownDescription: "A backend.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"host":   schema.StringAttribute{Required: true, MarkdownDescription: "Host name."},
					"weight": schema.NumberAttribute{Optional: true, MarkdownDescription: "Weight."},
				}},
			},
		},
	}
}

type shapeRule struct {
	Port     types.Number `tfsdk:"port"`
	Protocol types.String `tfsdk:"protocol"`
	UID      types.String `tfsdk:"uid"`
}

// fillComputed sets id and the rule uids the plan left unknown.
func fillComputed(_ context.Context, name types.String, rules []shapeRule, set func(path.Path, any)) {
	set(path.Root("id"), types.StringValue("shape-"+name.ValueString()))
	for i, rule := range rules {
		if rule.UID.IsUnknown() {
			set(path.Root("rule").AtListIndex(i).AtName("uid"), types.StringValue("uid-"+rule.Port.ValueBigFloat().Text('f', -1)))
		}
	}
}

func (r *shapeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	resp.State.Raw = req.Plan.Raw
	var name types.String
	var rules []shapeRule
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("rule"), &rules)...)
	if resp.Diagnostics.HasError() {
		return
	}
	fillComputed(ctx, name, rules, func(p path.Path, v any) {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, p, v)...)
	})
}

func (r *shapeResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

func (r *shapeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.State.Raw = req.Plan.Raw
	var name types.String
	var rules []shapeRule
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("name"), &name)...)
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("rule"), &rules)...)
	if resp.Diagnostics.HasError() {
		return
	}
	fillComputed(ctx, name, rules, func(p path.Path, v any) {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, p, v)...)
	})
}

func (r *shapeResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}
