// Command terraform-provider-peer is the benchmark peer for tfplug: a minimal provider on
// hashicorp/terraform-plugin-framework, served over protocol 6, with one resource `peer_blob`
// that has the same semantics as tests/support/tfplugtest.rs's `tfplugtest_blob` for the
// attributes the benchmark uses: `name` (required, forces replacement), `content` (optional),
// computed `id` ("blob-<name>") and computed `fingerprint` (hash of content). Objects are JSON
// files in $PEER_STORE, so read notices deletion.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log"
	"os"
	"path/filepath"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func main() {
	err := providerserver.Serve(context.Background(), func() provider.Provider { return &peerProvider{} },
		providerserver.ServeOpts{Address: "registry.terraform.io/bench/peer", ProtocolVersion: 6})
	if err != nil {
		log.Fatal(err)
	}
}

type peerProvider struct{}

func (p *peerProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "peer"
}

func (p *peerProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = pschema.Schema{Attributes: map[string]pschema.Attribute{
		"prefix": pschema.StringAttribute{Optional: true, Description: "Unused."},
	}}
}

func (p *peerProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *peerProvider) Resources(context.Context) []func() resource.Resource {
	resources := []func() resource.Resource{
		func() resource.Resource { return &blobResource{} },
		func() resource.Resource { return &shapeResource{} },
	}
	if os.Getenv("CONFORMANCE_NESTED") != "" {
		resources = append(resources, func() resource.Resource { return &nestedResource{} })
	}
	return resources
}

func (p *peerProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

type blobResource struct{}

type blobModel struct {
	Name        types.String `tfsdk:"name"`
	Content     types.String `tfsdk:"content"`
	ID          types.String `tfsdk:"id"`
	Fingerprint types.String `tfsdk:"fingerprint"`
}

// blobFile is the stored JSON form.
type blobFile struct {
	Name        string  `json:"name"`
	Content     *string `json:"content"`
	ID          string  `json:"id"`
	Fingerprint string  `json:"fingerprint"`
}

func fileOf(id string) string { return filepath.Join(os.Getenv("PEER_STORE"), id+".json") }

func fingerprint(content *string) string {
	h := sha256.New()
	if content != nil {
		h.Write([]byte(*content))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (r *blobResource) Metadata(_ context.Context, _ resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = "peer_blob"
}

func (r *blobResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{Attributes: map[string]schema.Attribute{
		"name": schema.StringAttribute{Required: true, Description: "Name; changing it replaces the blob.",
			PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
		"content": schema.StringAttribute{Optional: true, Description: "Content."},
		"id": schema.StringAttribute{Computed: true, Description: "Identifier (blob-<name>).",
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		"fingerprint": schema.StringAttribute{Computed: true, Description: "Hash of content."},
	}}
}

// ModifyPlan keeps the fingerprint known when content is unchanged (tfplugtest does the same).
func (r *blobResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return
	}
	var prior, planned blobModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &planned)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if prior.Content.Equal(planned.Content) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("fingerprint"), prior.Fingerprint)...)
	}
}

func (r *blobResource) save(m *blobModel) error {
	f := blobFile{Name: m.Name.ValueString(), Content: m.Content.ValueStringPointer()}
	f.ID = "blob-" + f.Name
	f.Fingerprint = fingerprint(f.Content)
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.WriteFile(fileOf(f.ID), data, 0o644); err != nil {
		return err
	}
	m.ID = types.StringValue(f.ID)
	m.Fingerprint = types.StringValue(f.Fingerprint)
	return nil
}

func (r *blobResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m blobModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.save(&m); err != nil {
		resp.Diagnostics.AddError("Cannot store blob", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *blobResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m blobModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data, err := os.ReadFile(fileOf(m.ID.ValueString()))
	if errors.Is(err, os.ErrNotExist) {
		resp.State.RemoveResource(ctx)
		return
	} else if err != nil {
		resp.Diagnostics.AddError("Cannot read blob", err.Error())
		return
	}
	var f blobFile
	if err := json.Unmarshal(data, &f); err != nil {
		resp.Diagnostics.AddError("Corrupt blob file", err.Error())
		return
	}
	m = blobModel{Name: types.StringValue(f.Name), Content: types.StringPointerValue(f.Content),
		ID: types.StringValue(f.ID), Fingerprint: types.StringValue(f.Fingerprint)}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *blobResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m blobModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.save(&m); err != nil {
		resp.Diagnostics.AddError("Cannot store blob", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *blobResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m blobModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := os.Remove(fileOf(m.ID.ValueString())); err != nil && !errors.Is(err, os.ErrNotExist) {
		resp.Diagnostics.AddError("Cannot delete blob", err.Error())
	}
}
