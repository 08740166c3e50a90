package main

// peer_nested is the twin of tests/support/tfplugtest.rs's `tfplugtest_nested`: nested
// attributes, echoed into state. Offered only with CONFORMANCE_NESTED=1 (Terraform 1.0.3
// cannot load a schema with nested attributes).

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
)

type nestedResource struct{}

func (r *nestedResource) Metadata(_ context.Context, _ resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = "peer_nested"
}

func (r *nestedResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	endpoint := map[string]schema.Attribute{
		"host": schema.StringAttribute{Required: true, MarkdownDescription: "Host name."},
		"port": schema.NumberAttribute{Optional: true, MarkdownDescription: "Port number."},
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Nested attributes (`nested_type`, Terraform 1.3+).",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{Required: true, MarkdownDescription: "Name; changing it replaces the object.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"endpoints": schema.ListNestedAttribute{Optional: true, MarkdownDescription: "Endpoints.",
				NestedObject: schema.NestedAttributeObject{Attributes: endpoint}},
			"primary": schema.SingleNestedAttribute{Optional: true, MarkdownDescription: "The primary endpoint.",
				Attributes: endpoint},
		},
	}
}

func (r *nestedResource) Create(_ context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	resp.State.Raw = req.Plan.Raw
}

func (r *nestedResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

func (r *nestedResource) Update(_ context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.State.Raw = req.Plan.Raw
}

func (r *nestedResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}
