// spheres.pov: the sample scene of `npm run local -- examples/spheres.zip`.
// Three glossy spheres and a mirror ball on a checkered floor under a sky gradient; renders in a few seconds.
#version 3.7;
#include "colors.inc"
#include "finish.inc"

global_settings { assumed_gamma 1.0 max_trace_level 8 }

camera {
    location <0, 2.2, -7>
    look_at <0, 0.7, 0>
    angle 42
}

light_source { <-6, 9, -7> color rgb <1.0, 0.96, 0.9> area_light <2, 0, 0>, <0, 0, 2>, 3, 3 adaptive 1 jitter }
light_source { <7, 4, -3> color rgb <0.25, 0.3, 0.45> shadowless }

sky_sphere {
    pigment {
        gradient y
        color_map { [0.0 color rgb <0.95, 0.75, 0.55>] [0.35 color rgb <0.45, 0.6, 0.9>] [1.0 color rgb <0.1, 0.2, 0.55>] }
    }
}

plane {
    y, 0
    pigment { checker color rgb <0.92, 0.92, 0.88> color rgb <0.18, 0.2, 0.26> scale 0.9 }
    finish { diffuse 0.8 reflection { 0.08 } }
}

#macro Ball(Pos, Radius, Colour)
    sphere {
        Pos + <0, Radius, 0>, Radius
        pigment { color Colour }
        finish { phong 0.9 phong_size 80 reflection { 0.05, 0.2 } diffuse 0.75 }
    }
#end

Ball(<-2.1, 0, 0.4>, 0.8, rgb <0.9, 0.15, 0.1>)
Ball(<2.0, 0, 0.6>, 0.75, rgb <0.1, 0.45, 0.95>)
Ball(<-0.6, 0, -1.6>, 0.45, rgb <0.2, 0.8, 0.3>)
Ball(<1.0, 0, -1.9>, 0.35, rgb <1.0, 0.75, 0.1>)

// The mirror ball in the middle.
sphere {
    <0, 1.1, 1.0>, 1.1
    pigment { color rgb 0.9 }
    finish { reflection { 0.85 } specular 0.8 roughness 0.002 diffuse 0.05 ambient 0 }
}
