/* vk_cmd.c: the context's single command buffer: begin, dispatch (descriptor sets from the
 * context's pool, recycled per submission), copies, barriers, timestamps, submit-and-wait. */
#include <string.h>

#include "engine/vk_internal.h"

bool vk_begin(struct vk_ctx *ctx, char *err, size_t errlen)
{
    if (ctx->recording)
        return vk_fail(err, errlen, "Vulkan: vk_begin while already recording");
    VkResult r = vkResetDescriptorPool(ctx->dev, ctx->desc_pool, 0);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkResetDescriptorPool failed: %s", vk_result_str(r));
    if ((r = vkResetCommandBuffer(ctx->cmd, 0)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkResetCommandBuffer failed: %s", vk_result_str(r));
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    if ((r = vkBeginCommandBuffer(ctx->cmd, &bi)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkBeginCommandBuffer failed: %s", vk_result_str(r));
    ctx->recording = true;
    ctx->ts_written = 0;
    return true;
}

bool vk_dispatch(struct vk_ctx *ctx, const struct vk_pipeline *p, const struct vk_binding *binds,
                 const void *push, const uint32_t groups[3], char *err, size_t errlen)
{
    if (!ctx->recording)
        return vk_fail(err, errlen, "Vulkan: dispatch outside vk_begin/vk_submit_wait");
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = ctx->desc_pool,
        .descriptorSetCount = 1,
        .pSetLayouts = &p->set_layout,
    };
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(ctx->dev, &ai, &set);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkAllocateDescriptorSets failed: %s (more than %d "
                       "dispatches in one submission?)", vk_result_str(r), VK_MAX_SETS);
    VkDescriptorBufferInfo infos[VK_MAX_BINDINGS];
    VkWriteDescriptorSet writes[VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < p->n_buffers; i++) {
        const struct vk_binding *b = &binds[i];
        if (!b->b || !b->b->buf || b->offset % ctx->storage_align || b->range == 0 ||
            b->offset > b->b->size || b->range > b->b->size - b->offset ||
            b->range > ctx->info.max_storage_range)
            return vk_fail(err, errlen, "Vulkan: binding %u (offset %llu, %llu bytes) is not a valid "
                           "range of its buffer", i, (unsigned long long)b->offset, (unsigned long long)b->range);
        infos[i] = (VkDescriptorBufferInfo){.buffer = b->b->buf, .offset = b->offset, .range = b->range};
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    }
    vkUpdateDescriptorSets(ctx->dev, p->n_buffers, writes, 0, NULL);
    vkCmdBindPipeline(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipe);
    vkCmdBindDescriptorSets(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_bytes)
        vkCmdPushConstants(ctx->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_bytes, push);
    vkCmdDispatch(ctx->cmd, groups[0], groups[1], groups[2]);
    return true;
}

void vk_barrier(struct vk_ctx *ctx)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(ctx->cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
}

bool vk_copy(struct vk_ctx *ctx, const struct vk_buffer *src, VkDeviceSize src_off, const struct vk_buffer *dst,
             VkDeviceSize dst_off, VkDeviceSize n, char *err, size_t errlen)
{
    if (!ctx->recording)
        return vk_fail(err, errlen, "Vulkan: copy outside vk_begin/vk_submit_wait");
    if (src_off > src->size || n > src->size - src_off || dst_off > dst->size || n > dst->size - dst_off)
        return vk_fail(err, errlen, "Vulkan: copy of %llu bytes past a buffer's end", (unsigned long long)n);
    VkBufferCopy region = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    vkCmdCopyBuffer(ctx->cmd, src->buf, dst->buf, 1, &region);
    return true;
}

bool vk_timestamp(struct vk_ctx *ctx, uint32_t slot, char *err, size_t errlen)
{
    if (!ctx->recording)
        return vk_fail(err, errlen, "Vulkan: timestamp outside vk_begin/vk_submit_wait");
    if (!ctx->query_pool)
        return vk_fail(err, errlen, "Vulkan: %s has no timestamps on its compute queue", ctx->info.name);
    if (slot >= VK_TIMESTAMP_SLOTS)
        return vk_fail(err, errlen, "Vulkan: timestamp slot %u out of range", slot);
    if (!ctx->ts_written)
        vkCmdResetQueryPool(ctx->cmd, ctx->query_pool, 0, VK_TIMESTAMP_SLOTS);
    ctx->ts_written |= 1ull << slot;
    vkCmdWriteTimestamp(ctx->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, ctx->query_pool, slot);
    return true;
}

void vk_cancel(struct vk_ctx *ctx)
{
    if (!ctx->recording)
        return;
    vkEndCommandBuffer(ctx->cmd); /* the next vk_begin resets it */
    ctx->recording = false;
    ctx->ts_written = 0;
}

bool vk_submit_wait(struct vk_ctx *ctx, char *err, size_t errlen)
{
    if (!ctx->recording)
        return vk_fail(err, errlen, "Vulkan: submit without vk_begin");
    ctx->recording = false;
    /* Results must be visible to host reads of mapped memory after the fence. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(ctx->cmd);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkEndCommandBuffer failed: %s", vk_result_str(r));
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->cmd,
    };
    if ((r = vkResetFences(ctx->dev, 1, &ctx->fence)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkResetFences failed: %s", vk_result_str(r));
    if ((r = vkQueueSubmit(ctx->queue, 1, &si, ctx->fence)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkQueueSubmit failed: %s", vk_result_str(r));
    if ((r = vkWaitForFences(ctx->dev, 1, &ctx->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkWaitForFences failed: %s", vk_result_str(r));
    return true;
}

bool vk_timestamp_elapsed_ns(struct vk_ctx *ctx, uint32_t from, uint32_t to, double *ns, char *err,
                             size_t errlen)
{
    if (!ctx->query_pool || ctx->recording)
        return vk_fail(err, errlen, "Vulkan: no timestamps from a finished submission");
    /* Waiting on a slot that was never written would never return. */
    if (from >= VK_TIMESTAMP_SLOTS || to >= VK_TIMESTAMP_SLOTS || !(ctx->ts_written >> from & 1) ||
        !(ctx->ts_written >> to & 1))
        return vk_fail(err, errlen, "Vulkan: timestamp slots %u/%u not written by the last submission",
                       from, to);
    uint64_t t[2];
    VkResult r = vkGetQueryPoolResults(ctx->dev, ctx->query_pool, from, 1, sizeof t[0], &t[0], sizeof t[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r == VK_SUCCESS)
        r = vkGetQueryPoolResults(ctx->dev, ctx->query_pool, to, 1, sizeof t[1], &t[1], sizeof t[1],
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkGetQueryPoolResults failed: %s",
                       vk_result_str(r));
    *ns = (double)(t[1] - t[0]) * ctx->info.timestamp_period_ns;
    return true;
}
