/* vk_buffer.c: device-local buffers (filled and read back through a reusable host-visible
 * staging buffer) and mapped host-visible buffers. */
#include <string.h>

#include "engine/vk_internal.h"

bool vk_buffer_create(struct vk_ctx *ctx, struct vk_buffer *b, VkDeviceSize size, enum vk_mem kind,
                      char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (size == 0)
        return vk_fail(err, errlen, "Vulkan: buffer of 0 bytes");
    size = (size + 3) & ~(VkDeviceSize)3; /* shaders read whole 32-bit words */
    if (ctx->info.max_alloc && size > ctx->info.max_alloc)
        return vk_fail(err, errlen, "Vulkan: buffer of %llu bytes exceeds the device's largest "
                       "allocation (%llu)", (unsigned long long)size, (unsigned long long)ctx->info.max_alloc);
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(ctx->dev, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateBuffer(%llu bytes) failed: %s",
                       (unsigned long long)size, vk_result_str(r));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->dev, b->buf, &req);
    int type;
    if (kind == VK_MEM_DEVICE) {
        type = vk_find_memory_type(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    } else {
        const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        /* Cached memory makes host reads of results fast. */
        type = vk_find_memory_type(ctx, req.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (type < 0)
            type = vk_find_memory_type(ctx, req.memoryTypeBits, host);
    }
    if (type < 0) {
        vk_buffer_destroy(ctx, b);
        return vk_fail(err, errlen, "Vulkan: no %s memory type for a buffer",
                       kind == VK_MEM_DEVICE ? "device-local" : "host-visible");
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = (uint32_t)type,
    };
    if ((r = vkAllocateMemory(ctx->dev, &mai, NULL, &b->mem)) != VK_SUCCESS) {
        vk_buffer_destroy(ctx, b);
        return vk_fail(err, errlen, "Vulkan: vkAllocateMemory(%llu bytes) failed: %s",
                       (unsigned long long)req.size, vk_result_str(r));
    }
    if ((r = vkBindBufferMemory(ctx->dev, b->buf, b->mem, 0)) != VK_SUCCESS) {
        vk_buffer_destroy(ctx, b);
        return vk_fail(err, errlen, "Vulkan: vkBindBufferMemory failed: %s", vk_result_str(r));
    }
    if (kind == VK_MEM_HOST && (r = vkMapMemory(ctx->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map)) != VK_SUCCESS) {
        vk_buffer_destroy(ctx, b);
        return vk_fail(err, errlen, "Vulkan: vkMapMemory failed: %s", vk_result_str(r));
    }
    b->size = size;
    b->alloc_bytes = req.size;
    b->kind = kind;
    ctx->allocated[kind] += req.size;
    return true;
}

void vk_buffer_destroy(struct vk_ctx *ctx, struct vk_buffer *b)
{
    if (b->buf)
        vkDestroyBuffer(ctx->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(ctx->dev, b->mem, NULL); /* unmaps implicitly */
    ctx->allocated[b->kind] -= b->alloc_bytes;
    memset(b, 0, sizeof *b);
}

uint64_t vk_allocated_bytes(const struct vk_ctx *ctx, enum vk_mem kind)
{
    return (unsigned)kind < 2 ? ctx->allocated[kind] : 0;
}

static bool check_range(const struct vk_buffer *b, VkDeviceSize off, size_t n, char *err, size_t errlen)
{
    if (!b->buf || off > b->size || n > b->size - off)
        return vk_fail(err, errlen, "Vulkan: copy of %zu bytes at %llu outside a buffer of %llu bytes",
                       n, (unsigned long long)off, (unsigned long long)b->size);
    return true;
}

/* One staging copy: records src->dst, submits and waits. */
static bool copy_now(struct vk_ctx *ctx, const struct vk_buffer *src, VkDeviceSize src_off,
                     const struct vk_buffer *dst, VkDeviceSize dst_off, VkDeviceSize n, char *err, size_t errlen)
{
    if (!vk_begin(ctx, err, errlen))
        return false;
    VkBufferCopy region = {.srcOffset = src_off, .dstOffset = dst_off, .size = n};
    vkCmdCopyBuffer(ctx->cmd, src->buf, dst->buf, 1, &region);
    return vk_submit_wait(ctx, err, errlen);
}

static bool ensure_staging(struct vk_ctx *ctx, char *err, size_t errlen)
{
    if (ctx->staging.buf)
        return true;
    return vk_buffer_create(ctx, &ctx->staging, VK_STAGING_BYTES, VK_MEM_HOST, err, errlen);
}

bool vk_buffer_upload(struct vk_ctx *ctx, struct vk_buffer *dst, VkDeviceSize off, const void *src,
                      size_t n, char *err, size_t errlen)
{
    if (!check_range(dst, off, n, err, errlen))
        return false;
    if (dst->map) {
        memcpy((uint8_t *)dst->map + off, src, n);
        return true;
    }
    if (ctx->recording)
        return vk_fail(err, errlen, "Vulkan: upload while a command buffer is being recorded");
    if (!ensure_staging(ctx, err, errlen))
        return false;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VK_STAGING_BYTES ? n - done : VK_STAGING_BYTES;
        memcpy(ctx->staging.map, (const uint8_t *)src + done, chunk);
        if (!copy_now(ctx, &ctx->staging, 0, dst, off + done, chunk, err, errlen))
            return false;
        done += chunk;
    }
    return true;
}

bool vk_buffer_download(struct vk_ctx *ctx, const struct vk_buffer *src, VkDeviceSize off, void *dst,
                        size_t n, char *err, size_t errlen)
{
    if (!check_range(src, off, n, err, errlen))
        return false;
    if (src->map) {
        memcpy(dst, (const uint8_t *)src->map + off, n);
        return true;
    }
    if (ctx->recording)
        return vk_fail(err, errlen, "Vulkan: download while a command buffer is being recorded");
    if (!ensure_staging(ctx, err, errlen))
        return false;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VK_STAGING_BYTES ? n - done : VK_STAGING_BYTES;
        if (!copy_now(ctx, src, off + done, &ctx->staging, 0, chunk, err, errlen))
            return false;
        memcpy((uint8_t *)dst + done, ctx->staging.map, chunk);
        done += chunk;
    }
    return true;
}

bool vk_bind_scales(const struct vk_ctx *ctx, const struct vk_buffer *b, VkDeviceSize off, uint64_t floats,
                    const struct vk_buffer *dummy, struct vk_binding *out, uint32_t *elem, char *err, size_t errlen)
{
    *out = (struct vk_binding){.b = dummy, .offset = 0, .range = dummy->size};
    *elem = VK_NO_SCALES;
    if (!b)
        return true;
    if (off % 4 || off > b->size || floats > (b->size - off) / 4)
        return vk_fail(err, errlen, "Vulkan: activation scales (%llu floats at byte %llu) outside their buffer of "
                       "%llu bytes", (unsigned long long)floats, (unsigned long long)off,
                       (unsigned long long)b->size);
    const VkDeviceSize align = vk_storage_align(ctx), base = off - off % align;
    const VkDeviceSize range = off - base + (floats ? 4 * floats : 4 <= b->size - off ? 4 : b->size - off);
    if (range > ctx->info.max_storage_range)
        return vk_fail(err, errlen, "Vulkan: activation scales span %llu bytes, more than one binding covers on %s",
                       (unsigned long long)range, ctx->info.name);
    *out = (struct vk_binding){.b = b, .offset = base, .range = range};
    *elem = (uint32_t)((off - base) / 4);
    return true;
}
