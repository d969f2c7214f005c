/* vk_device.c: Vulkan instance and device choice (by index, by name, or best type first, with
 * the reason each rejected device is unusable), the context's queue and pools, and teardown. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

/* What the shaders need; vk_matmul.c sizes its workgroups within these. */
#define NEED_API VK_API_VERSION_1_2
#define NEED_SHARED_BYTES (16u * 1024u)
#define NEED_INVOCATIONS 128u
#define NEED_MAX_SUBGROUPS_OF_64 32u /* a 64-thread workgroup may hold at most 32 subgroups */
#define MAX_REDUCE_LANES 64u         /* the shared-memory reductions' chunk: 2..64 threads */

bool vk_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

const char *vk_result_str(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult (other)";
    }
}

int vk_find_memory_type(const struct vk_ctx *ctx, uint32_t bits, VkMemoryPropertyFlags want)
{
    for (uint32_t i = 0; i < ctx->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (ctx->mem_props.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

bool vk_validation_available(void)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return false;
    VkLayerProperties *props = calloc(n, sizeof *props);
    if (!props)
        return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(props[i].layerName, VALIDATION_LAYER) == 0;
    free(props);
    return found;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    struct vk_ctx *ctx = user;
    /* Only the layer's findings count. General messages are the loader's, about the machine's
     * installation: notes ("VK_INSTANCE_LAYERS adds a layer") and errors about driver manifests
     * it cannot load (a multiarch install puts aarch64 ICDs beside the x86-64 ones); a device
     * that is really missing fails vk_ctx_create by itself. */
    if (!(types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)))
        return VK_FALSE;
    if (ctx->n_messages++ == 0)
        snprintf(ctx->first_message, sizeof ctx->first_message, "%s",
                 data && data->pMessage ? data->pMessage : "(no text)");
    return VK_FALSE;
}

uint32_t vk_validation_messages(const struct vk_ctx *ctx, char *first, size_t firstlen)
{
    if (first && firstlen)
        snprintf(first, firstlen, "%s", ctx->first_message);
    return ctx->n_messages;
}

static bool create_instance(struct vk_ctx *ctx, bool validation, char *err, size_t errlen)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "moeserve",
        .pEngineName = "moeserve",
        .apiVersion = NEED_API,
    };
    const char *layers[] = {VALIDATION_LAYER};
    const char *exts[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkDebugUtilsMessengerCreateInfoEXT msg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_validation_message,
        .pUserData = ctx,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation ? &msg : NULL, /* also catches messages of instance creation */
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validation ? 1 : 0,
        .ppEnabledExtensionNames = exts,
    };
    if (validation && !vk_validation_available())
        return vk_fail(err, errlen, "Vulkan: validation asked for but %s is not installed",
                       VALIDATION_LAYER);
#ifdef MOESERVE_TEST_HOOKS
    /* Sanitizer builds: the loader unloads lavapipe's ICD at vkDestroyInstance, and LeakSanitizer
     * then reports memory the ICD keeps as leaked from an unknown module (TOOLCHAIN.md, section 5).
     * Keeping the library loaded (a no-op where it is not installed) lets LSan see it is fine. */
    dlopen("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
#endif
    VkResult r = vkCreateInstance(&ci, NULL, &ctx->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return vk_fail(err, errlen, "Vulkan: no driver (ICD) supports Vulkan 1.2 "
                       "(vkCreateInstance: %s); install one, e.g. mesa-vulkan-drivers", vk_result_str(r));
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateInstance failed: %s", vk_result_str(r));
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(ctx->instance, "vkCreateDebugUtilsMessengerEXT");
        if (!create || create(ctx->instance, &msg, NULL, &ctx->messenger) != VK_SUCCESS)
            return vk_fail(err, errlen, "Vulkan: cannot create the validation messenger");
    }
    return true;
}

const char *vk_subgroup_gap(const VkPhysicalDeviceSubgroupProperties *sg)
{
    if (!(sg->supportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
        return "has no subgroup operations in compute shaders";
    if ((sg->supportedOperations & (VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT)) !=
        (VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
        return "lacks subgroup arithmetic (subgroupAdd)";
    if (sg->subgroupSize * NEED_MAX_SUBGROUPS_OF_64 < 64)
        return "has a subgroup size below 2";
    return NULL;
}

/* Fills `info` and returns NULL if the device can run moeserve's shaders, else why not. */
static const char *check_device(VkPhysicalDevice pd, struct vk_device_info *info, uint32_t *family,
                                VkDeviceSize *storage_align)
{
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(pd, &base);
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", base.deviceName);
    info->type = base.deviceType;
    info->api_version = base.apiVersion;
    if (base.apiVersion < NEED_API)
        return "supports only Vulkan < 1.2";
    vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceLimits *lim = &p2.properties.limits;
    info->subgroup_size = sg.subgroupSize;
    info->max_storage_range = lim->maxStorageBufferRange;
    info->max_shared = lim->maxComputeSharedMemorySize;
    *storage_align = lim->minStorageBufferOffsetAlignment;

    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 q2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(pd, &q2);
    info->max_alloc = m3.maxMemoryAllocationSize;

    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[i].size > info->device_local_bytes)
            info->device_local_bytes = mp.memoryHeaps[i].size;

    info->no_subgroups_why = vk_subgroup_gap(&sg);
    info->subgroups = info->no_subgroups_why == NULL;
    if (lim->maxComputeSharedMemorySize < NEED_SHARED_BYTES)
        return "has less than 16 KiB of shared memory per workgroup";
    if (lim->maxComputeWorkGroupInvocations < NEED_INVOCATIONS || lim->maxComputeWorkGroupSize[0] < NEED_INVOCATIONS)
        return "allows fewer than 128 threads per workgroup";
    if (lim->maxPushConstantsSize < 64)
        return "has fewer than 64 bytes of push constants";

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32)
        nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    /* A compute family; prefer one that also has timestamps. */
    int best = -1;
    for (uint32_t i = 0; i < nq; i++) {
        if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || qf[i].queueCount == 0)
            continue;
        if (best < 0 || (qf[best].timestampValidBits == 0 && qf[i].timestampValidBits > 0))
            best = (int)i;
    }
    if (best < 0)
        return "has no compute queue";
    *family = (uint32_t)best;
    info->timestamp_period_ns = qf[best].timestampValidBits ? lim->timestampPeriod : 0.0;
    return NULL;
}

/* Lower is better: discrete, integrated, virtual, CPU, other. */
static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static bool pick_device(struct vk_ctx *ctx, const struct vk_config *cfg, char *err, size_t errlen)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(ctx->instance, &n, NULL);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed: %s", vk_result_str(r));
    if (n == 0)
        return vk_fail(err, errlen, "Vulkan: no physical devices (is a driver such as "
                       "mesa-vulkan-drivers installed?)");
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    if (!pds)
        return vk_fail(err, errlen, "Vulkan: out of memory");
    r = vkEnumeratePhysicalDevices(ctx->instance, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(pds);
        return vk_fail(err, errlen, "Vulkan: vkEnumeratePhysicalDevices failed: %s", vk_result_str(r));
    }
    if (cfg->device_index >= 0 && (uint32_t)cfg->device_index >= n) {
        free(pds);
        return vk_fail(err, errlen, "Vulkan: device index %d asked for, but there are %u devices",
                       cfg->device_index, n);
    }

    char why[1024] = "";
    size_t used = 0;
    int chosen = -1, chosen_rank = 99;
    for (uint32_t i = 0; i < n; i++) {
        if (cfg->device_index >= 0 && (uint32_t)cfg->device_index != i)
            continue;
        struct vk_device_info info;
        uint32_t family = 0;
        VkDeviceSize align = 0;
        const char *bad = check_device(pds[i], &info, &family, &align);
        const bool other_name = !bad && cfg->device_name && !strstr(info.name, cfg->device_name);
        if (bad || other_name) {
            int w = snprintf(why + used, sizeof why - used, "%s%u: %s %s%s%s", used ? "; " : "", i, info.name,
                             bad ? bad : "is not the device named ", bad ? "" : cfg->device_name, bad ? "" : "");
            if (w > 0 && (size_t)w < sizeof why - used)
                used += (size_t)w;
            continue;
        }
        if (type_rank(info.type) < chosen_rank) {
            chosen = (int)i;
            chosen_rank = type_rank(info.type);
            ctx->phys = pds[i];
            ctx->info = info;
            ctx->queue_family = family;
            ctx->storage_align = align;
        }
    }
    free(pds);
    if (chosen < 0)
        return vk_fail(err, errlen, "Vulkan: no usable device (%s)", why);
    vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->mem_props);
    return true;
}

static bool create_device(struct vk_ctx *ctx, char *err, size_t errlen)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
    };
    VkResult r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->dev);
    if (r != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateDevice(%s) failed: %s", ctx->info.name, vk_result_str(r));
    vkGetDeviceQueue(ctx->dev, ctx->queue_family, 0, &ctx->queue);

    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    if ((r = vkCreateCommandPool(ctx->dev, &pci, NULL, &ctx->cmd_pool)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateCommandPool failed: %s", vk_result_str(r));
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    if ((r = vkAllocateCommandBuffers(ctx->dev, &cai, &ctx->cmd)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkAllocateCommandBuffers failed: %s", vk_result_str(r));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateFence(ctx->dev, &fci, NULL, &ctx->fence)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateFence failed: %s", vk_result_str(r));

    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_MAX_SETS * VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo dpi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VK_MAX_SETS,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    if ((r = vkCreateDescriptorPool(ctx->dev, &dpi, NULL, &ctx->desc_pool)) != VK_SUCCESS)
        return vk_fail(err, errlen, "Vulkan: vkCreateDescriptorPool failed: %s", vk_result_str(r));

    if (ctx->info.timestamp_period_ns > 0) {
        VkQueryPoolCreateInfo qpi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = VK_TIMESTAMP_SLOTS,
        };
        if ((r = vkCreateQueryPool(ctx->dev, &qpi, NULL, &ctx->query_pool)) != VK_SUCCESS)
            return vk_fail(err, errlen, "Vulkan: vkCreateQueryPool failed: %s", vk_result_str(r));
    }
    return true;
}

struct vk_ctx *vk_ctx_create(const struct vk_config *cfg, char *err, size_t errlen)
{
    struct vk_config def = VK_CONFIG_DEFAULT;
    if (!cfg)
        cfg = &def;
    struct vk_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        vk_fail(err, errlen, "Vulkan: out of memory");
        return NULL;
    }
    if (!create_instance(ctx, cfg->validation, err, errlen) || !pick_device(ctx, cfg, err, errlen) ||
        !create_device(ctx, err, errlen)) {
        vk_ctx_destroy(ctx);
        return NULL;
    }
    if (cfg->max_binding && cfg->max_binding < ctx->info.max_storage_range)
        ctx->info.max_storage_range = cfg->max_binding;
    if (cfg->force_no_subgroups && ctx->info.subgroups) {
        ctx->info.subgroups = false;
        ctx->info.no_subgroups_why = "has them turned off (vk_config.force_no_subgroups)";
    }
    /* The subgroup size: on a device whose subgroupAdd adds lanes in index order the variants
     * then agree bit for bit (shaders/reduce.glsl). */
    uint32_t lanes = cfg->reduce_lanes ? cfg->reduce_lanes : ctx->info.subgroup_size;
    ctx->info.reduce_lanes = lanes < 2 ? 2 : lanes > MAX_REDUCE_LANES ? MAX_REDUCE_LANES : lanes;
    return ctx;
}

const struct vk_device_info *vk_ctx_info(const struct vk_ctx *ctx)
{
    return &ctx->info;
}

VkDeviceSize vk_storage_align(const struct vk_ctx *ctx)
{
    return ctx->storage_align;
}

void vk_ctx_destroy(struct vk_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->dev) {
        vkDeviceWaitIdle(ctx->dev);
        vk_buffer_destroy(ctx, &ctx->staging);
        if (ctx->query_pool)
            vkDestroyQueryPool(ctx->dev, ctx->query_pool, NULL);
        if (ctx->desc_pool)
            vkDestroyDescriptorPool(ctx->dev, ctx->desc_pool, NULL);
        if (ctx->fence)
            vkDestroyFence(ctx->dev, ctx->fence, NULL);
        if (ctx->cmd_pool)
            vkDestroyCommandPool(ctx->dev, ctx->cmd_pool, NULL); /* frees ctx->cmd */
        vkDestroyDevice(ctx->dev, NULL);
    }
    if (ctx->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(ctx->instance, ctx->messenger, NULL);
    }
    if (ctx->instance)
        vkDestroyInstance(ctx->instance, NULL);
    free(ctx);
}
