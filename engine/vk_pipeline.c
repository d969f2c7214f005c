/* vk_pipeline.c: compute pipelines built from SPIR-V held in memory, with storage-buffer
 * bindings 0..n-1, a push-constant block and 32-bit specialization constants 0..n-1. */
#include <string.h>

#include "engine/vk_internal.h"

#define MAX_SPEC 16

bool vk_pipeline_create(struct vk_ctx *ctx, const struct vk_pipeline_desc *d, struct vk_pipeline *p,
                        char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    const char *name = d->name ? d->name : "(unnamed)";
    if (d->n_buffers > VK_MAX_BINDINGS || d->n_spec > MAX_SPEC || d->push_bytes % 4 || d->push_bytes > 128 ||
        !d->spirv || d->spirv_bytes % 4 || d->spirv_bytes == 0)
        return vk_fail(err, errlen, "Vulkan: pipeline %s: bad description", name);

    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = d->spirv_bytes,
        .pCode = d->spirv,
    };
    VkResult r = vkCreateShaderModule(ctx->dev, &smi, NULL, &p->module);
    if (r != VK_SUCCESS)
        goto fail;

    VkDescriptorSetLayoutBinding binds[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < d->n_buffers; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dli = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = d->n_buffers,
        .pBindings = binds,
    };
    if ((r = vkCreateDescriptorSetLayout(ctx->dev, &dli, NULL, &p->set_layout)) != VK_SUCCESS)
        goto fail;

    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = d->push_bytes};
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->set_layout,
        .pushConstantRangeCount = d->push_bytes ? 1 : 0,
        .pPushConstantRanges = &pcr,
    };
    if ((r = vkCreatePipelineLayout(ctx->dev, &pli, NULL, &p->layout)) != VK_SUCCESS)
        goto fail;

    VkSpecializationMapEntry entries[MAX_SPEC];
    for (uint32_t i = 0; i < d->n_spec; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo spec = {
        .mapEntryCount = d->n_spec,
        .pMapEntries = entries,
        .dataSize = 4 * (size_t)d->n_spec,
        .pData = d->spec,
    };
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = p->module,
            .pName = "main",
            .pSpecializationInfo = d->n_spec ? &spec : NULL,
        },
        .layout = p->layout,
    };
    if ((r = vkCreateComputePipelines(ctx->dev, VK_NULL_HANDLE, 1, &cpi, NULL, &p->pipe)) != VK_SUCCESS)
        goto fail;
    p->n_buffers = d->n_buffers;
    p->push_bytes = d->push_bytes;
    return true;

fail:
    vk_pipeline_destroy(ctx, p);
    return vk_fail(err, errlen, "Vulkan: creating pipeline %s failed: %s", name, vk_result_str(r));
}

void vk_pipeline_destroy(struct vk_ctx *ctx, struct vk_pipeline *p)
{
    if (p->pipe)
        vkDestroyPipeline(ctx->dev, p->pipe, NULL);
    if (p->layout)
        vkDestroyPipelineLayout(ctx->dev, p->layout, NULL);
    if (p->set_layout)
        vkDestroyDescriptorSetLayout(ctx->dev, p->set_layout, NULL);
    if (p->module)
        vkDestroyShaderModule(ctx->dev, p->module, NULL);
    memset(p, 0, sizeof *p);
}
