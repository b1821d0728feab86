"""A Lambert + soft Blinn-Phong shader for pyrender's colour pass, about 3x cheaper than its PBR shader
on Mesa's llvmpipe (the PBR pass alone used ~110 ms of CPU per 640x480 frame here).

The uniforms are the ones pyrender already sets (M, V, P, cam_pos, material.*, directional_lights,
ambient_light), so only the program changes; depth and segmentation passes keep pyrender's shaders.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from pyrender.shader_program import ShaderProgramCache

VERTEX = """#version 330 core
layout(location = 0) in vec3 position;
#ifdef NORMAL_LOC
layout(location = NORMAL_LOC) in vec3 normal;
#endif
#ifdef TEXCOORD_0_LOC
layout(location = TEXCOORD_0_LOC) in vec2 texcoord_0;
#endif
#ifdef COLOR_0_LOC
layout(location = COLOR_0_LOC) in vec4 color_0;
#endif
layout(location = INST_M_LOC) in mat4 inst_m;
uniform mat4 M;
uniform mat4 V;
uniform mat4 P;
out vec3 world_position;
out vec3 world_normal;
out vec2 uv;
out vec4 vertex_color;
void main()
{
    mat4 model = M * inst_m;
    vec4 world = model * vec4(position, 1.0);
    gl_Position = P * V * world;
    world_position = world.xyz;
#ifdef NORMAL_LOC
    world_normal = mat3(model) * normal;  // rigid model matrices only: no inverse-transpose needed
#else
    world_normal = vec3(0.0, 0.0, 1.0);
#endif
#ifdef TEXCOORD_0_LOC
    uv = texcoord_0;
#else
    uv = vec2(0.0);
#endif
#ifdef COLOR_0_LOC
    vertex_color = color_0;
#else
    vertex_color = vec4(1.0);
#endif
}
"""

FRAGMENT = """#version 330 core
struct DirectionalLight { vec3 color; float intensity; vec3 direction; };
struct Material {
    vec3 emissive_factor;
    vec4 base_color_factor;
    float metallic_factor;
    float roughness_factor;
#ifdef HAS_BASE_COLOR_TEX
    sampler2D base_color_texture;
#endif
};
uniform Material material;
uniform DirectionalLight directional_lights[MAX_DIRECTIONAL_LIGHTS];
uniform int n_directional_lights;
uniform vec3 cam_pos;
uniform vec3 ambient_light;
in vec3 world_position;
in vec3 world_normal;
in vec2 uv;
in vec4 vertex_color;
out vec4 frag_color;
void main()
{
    vec3 albedo = material.base_color_factor.rgb * vertex_color.rgb;
#ifdef HAS_BASE_COLOR_TEX
    vec3 tex = texture(material.base_color_texture, uv).rgb;
    albedo *= tex * tex;  // sRGB -> linear, gamma 2 (cheap)
#endif
    vec3 n = normalize(world_normal);
    if (!gl_FrontFacing) n = -n;
    float shininess = mix(48.0, 4.0, material.roughness_factor);
    float spec_strength = 0.12 * (1.0 - material.roughness_factor);
    vec3 color = albedo * ambient_light;
    for (int i = 0; i < n_directional_lights; i++) {
        vec3 l = -directional_lights[i].direction;
        vec3 radiance = directional_lights[i].intensity * directional_lights[i].color;
        float nl = max(dot(n, l), 0.0);
        vec3 reflected = albedo * 0.3183;
        if (spec_strength > 0.0) {  // uniform branch: matte surfaces skip the costly pow()
            vec3 v = normalize(cam_pos - world_position);
            reflected += spec_strength * pow(max(dot(n, normalize(l + v)), 0.0), shininess);
        }
        color += radiance * nl * reflected;
    }
    frag_color = vec4(sqrt(clamp(color, 0.0, 1.0)), 1.0);  // linear -> sRGB, gamma 2
}
"""

_dir: Path | None = None


def _shader_dir() -> Path:
    global _dir
    if _dir is None:
        _dir = Path(tempfile.mkdtemp(prefix="hawor_shaders_"))
        atexit.register(shutil.rmtree, _dir, True)
        (_dir / "synth_lambert.vert").write_text(VERTEX)
        (_dir / "synth_lambert.frag").write_text(FRAGMENT)
    return _dir


class LambertPrograms(ShaderProgramCache):
    """pyrender program cache that swaps the colour-pass mesh shaders for the Lambert ones above."""

    def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        if vertex_shader == "mesh.vert" and fragment_shader == "mesh.frag":
            folder = _shader_dir()
            vertex_shader, fragment_shader = str(folder / "synth_lambert.vert"), str(folder / "synth_lambert.frag")
        return super().get_program(vertex_shader, fragment_shader, geometry_shader, defines)
